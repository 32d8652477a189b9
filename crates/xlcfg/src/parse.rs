//! The xl.cfg lexer and parser.
