# A tiny PVH guest: reads hvm_start_info and reports what it finds on I/O port 0xe9,
# one "RXLTEST ..." line per item, then halts. See README.md for the output format.
#
# Build (GNU as, no preprocessor): as --32 -o hello.o hello.S
#                                   ld -m elf_i386 -T hello.ld -o hello.elf hello.o

        .code32

# The one Xen ELF note a PVH image needs: XEN_ELFNOTE_PHYS32_ENTRY (18).
        .section .note.Xen, "a"
        .p2align 2
        .long   4                       # namesz
        .long   4                       # descsz
        .long   18                      # type
        .asciz  "Xen"
        .long   _start

        .text
        .globl  _start
_start:
        cli
        cld
        movl    $stack_top, %esp
        movl    %ebx, %ebp              # %ebp = struct hvm_start_info *

        # magic and version
        movl    $s_magic, %eax
        call    puts
        movl    0(%ebp), %eax
        call    puthex32
        movl    $s_version, %eax
        call    puts
        movl    4(%ebp), %eax
        call    putdec
        call    newline
        cmpl    $0x336ec578, 0(%ebp)
        je      1f
        movl    $s_badmagic, %eax
        call    puts
        jmp     done
1:
        # flags
        movl    $s_flags, %eax
        call    puts
        movl    8(%ebp), %eax
        call    puthex32
        call    newline

        # command line
        movl    $s_cmdline, %eax
        call    puts
        movl    24(%ebp), %eax          # cmdline_paddr (low half; below 4 GiB)
        call    putcstr
        call    newline

        # modules
        movl    $s_modules, %eax
        call    puts
        movl    12(%ebp), %eax
        call    putdec
        call    newline
        movl    16(%ebp), %edi          # modlist_paddr
        xorl    %ebx, %ebx              # module index
2:
        cmpl    12(%ebp), %ebx
        jae     3f
        movl    $s_module, %eax
        call    puts
        movl    %ebx, %eax
        call    putdec
        movl    $s_paddr, %eax
        call    puts
        movl    0(%edi), %eax
        movl    4(%edi), %edx
        call    puthex64
        movl    $s_size, %eax
        call    puts
        movl    8(%edi), %eax
        movl    12(%edi), %edx
        call    puthex64
        movl    $s_sum, %eax
        call    puts
        movl    0(%edi), %esi
        movl    8(%edi), %ecx
        call    fnv1a
        call    puthex32
        movl    $s_mcmdline, %eax
        call    puts
        movl    16(%edi), %eax
        call    putcstr
        call    newline
        addl    $32, %edi
        incl    %ebx
        jmp     2b
3:
        # memory map (version 1 and later)
        cmpl    $1, 4(%ebp)
        jb      5f
        movl    $s_memmap_n, %eax
        call    puts
        movl    48(%ebp), %eax
        call    putdec
        call    newline
        movl    40(%ebp), %edi          # memmap_paddr
        xorl    %ebx, %ebx
4:
        cmpl    48(%ebp), %ebx
        jae     5f
        movl    $s_memmap, %eax
        call    puts
        movl    %ebx, %eax
        call    putdec
        movl    $s_addr, %eax
        call    puts
        movl    0(%edi), %eax
        movl    4(%edi), %edx
        call    puthex64
        movl    $s_size, %eax
        call    puts
        movl    8(%edi), %eax
        movl    12(%edi), %edx
        call    puthex64
        movl    $s_type, %eax
        call    puts
        movl    16(%edi), %eax
        call    putdec
        call    newline
        addl    $24, %edi
        incl    %ebx
        jmp     4b
5:
        # RSDP, and the MADT's local APICs through the XSDT
        movl    32(%ebp), %esi          # rsdp_paddr
        testl   %esi, %esi
        jnz     6f
        movl    $s_rsdp_none, %eax
        call    puts
        jmp     done
6:
        movl    $s_rsdp, %eax
        call    puts
        movl    %esi, %eax
        xorl    %edx, %edx
        call    puthex64
        movl    $s_sig, %eax
        call    puts
        movl    $8, %ecx
        movl    %esi, %eax
        call    putnchars
        call    newline
        movl    $8, sdt_step            # XSDT: 8-byte entries (RSDP revision 2 and later)
        movl    24(%esi), %edi          # XSDT address (low half)
        cmpb    $2, 15(%esi)
        jae     61f
        movl    $4, sdt_step            # ACPI 1.0: the RSDT, 4-byte entries
        movl    16(%esi), %edi
61:
        movl    4(%edi), %ecx           # table length
        leal    (%edi,%ecx), %ecx       # end of the table
        leal    36(%edi), %edi          # first entry
        xorl    %ebx, %ebx              # local APICs
        xorl    %edx, %edx              # enabled ones
7:
        cmpl    %ecx, %edi
        jae     9f
        movl    (%edi), %esi            # a table
        addl    sdt_step, %edi
        cmpl    $0x43495041, (%esi)     # "APIC"
        jne     7b
        movl    4(%esi), %eax
        addl    %esi, %eax              # end of the MADT
        addl    $44, %esi               # first entry
8:
        cmpl    %eax, %esi
        jae     7b
        cmpb    $0, 1(%esi)             # a zero length would loop forever
        je      7b
        cmpb    $0, 0(%esi)             # Processor Local APIC
        jne     81f
        incl    %ebx
        testb   $1, 4(%esi)
        jz      81f
        incl    %edx
81:
        pushl   %eax
        movzbl  1(%esi), %eax
        addl    %eax, %esi              # next MADT entry
        popl    %eax
        jmp     8b
9:
        movl    $s_madt, %eax
        call    puts
        movl    %ebx, %eax
        call    putdec
        movl    $s_enabled, %eax
        call    puts
        movl    %edx, %eax
        call    putdec
        call    newline

done:
        movl    $s_done, %eax
        call    puts
        # QEMU's isa-debug-exit (if present) ends the run; Xen discards the write.
        xorl    %eax, %eax
        outb    %al, $0xf4
halt:
        cli
        hlt
        jmp     halt

# --- helpers: every one preserves all registers ------------------------------------------

# putc: print %al
putc:
        outb    %al, $0xe9
        ret

newline:
        pushl   %eax
        movb    $'\n', %al
        call    putc
        popl    %eax
        ret

# puts: print the NUL-terminated string at %eax
puts:
        pushal
        movl    %eax, %esi
1:
        lodsb
        testb   %al, %al
        jz      2f
        call    putc
        jmp     1b
2:
        popal
        ret

# putcstr: print the guest string at %eax (NUL-terminated, at most 4096 bytes, bytes outside
# 0x20..0x7e as '?'), or "(none)" if %eax is 0
putcstr:
        testl   %eax, %eax
        jnz     1f
        movl    $s_none, %eax
        jmp     puts
1:
        pushal
        movl    %eax, %esi
        movl    $4096, %ecx
2:
        lodsb
        testb   %al, %al
        jz      3f
        call    putprint
        loop    2b
3:
        popal
        ret

# putnchars: print %ecx bytes at %eax (non-printable as '?')
putnchars:
        pushal
        movl    %eax, %esi
        testl   %ecx, %ecx
        jz      2f
1:
        lodsb
        call    putprint
        loop    1b
2:
        popal
        ret

# putprint: print %al, or '?' if it is not printable ASCII
putprint:
        pushl   %eax
        cmpb    $0x20, %al
        jb      1f
        cmpb    $0x7e, %al
        jbe     2f
1:
        movb    $'?', %al
2:
        call    putc
        popl    %eax
        ret

# hexdigits: print %eax as 8 lowercase hex digits
hexdigits:
        pushal
        movl    %eax, %edx
        movl    $8, %ecx
1:
        roll    $4, %edx
        movb    %dl, %al
        andb    $0xf, %al
        cmpb    $10, %al
        jb      2f
        addb    $('a' - 10 - '0'), %al
2:
        addb    $'0', %al
        call    putc
        loop    1b
        popal
        ret

# puthex32: print %eax as 0x + 8 hex digits
puthex32:
        pushl   %eax
        movl    $s_0x, %eax
        call    puts
        popl    %eax
        jmp     hexdigits

# puthex64: print %edx:%eax as 0x + 16 hex digits
puthex64:
        pushl   %eax
        movl    $s_0x, %eax
        call    puts
        movl    %edx, %eax
        call    hexdigits
        popl    %eax
        jmp     hexdigits

# putdec: print %eax in decimal
putdec:
        pushal
        movl    $10, %ebx
        xorl    %ecx, %ecx
1:
        xorl    %edx, %edx
        divl    %ebx
        pushl   %edx
        incl    %ecx
        testl   %eax, %eax
        jnz     1b
2:
        popl    %eax
        addb    $'0', %al
        call    putc
        loop    2b
        popal
        ret

# fnv1a: %eax = FNV-1a 32 of %ecx bytes at %esi (only %eax changes)
fnv1a:
        pushl   %ecx
        pushl   %edx
        pushl   %esi
        movl    $0x811c9dc5, %eax
1:
        testl   %ecx, %ecx
        jz      2f
        movzbl  (%esi), %edx
        xorl    %edx, %eax
        imull   $0x01000193, %eax, %eax
        incl    %esi
        decl    %ecx
        jmp     1b
2:
        popl    %esi
        popl    %edx
        popl    %ecx
        ret

        .section .rodata
s_0x:           .asciz "0x"
s_magic:        .asciz "RXLTEST magic="
s_version:      .asciz " version="
s_badmagic:     .asciz "RXLTEST error bad magic\n"
s_flags:        .asciz "RXLTEST flags="
s_cmdline:      .asciz "RXLTEST cmdline="
s_none:         .asciz "(none)"
s_modules:      .asciz "RXLTEST modules="
s_module:       .asciz "RXLTEST module "
s_paddr:        .asciz " paddr="
s_size:         .asciz " size="
s_sum:          .asciz " sum="
s_mcmdline:     .asciz " cmdline="
s_memmap_n:     .asciz "RXLTEST memmap_entries="
s_memmap:       .asciz "RXLTEST memmap "
s_addr:         .asciz " addr="
s_type:         .asciz " type="
s_rsdp:         .asciz "RXLTEST rsdp="
s_rsdp_none:    .asciz "RXLTEST rsdp=none\n"
s_sig:          .asciz " sig="
s_madt:         .asciz "RXLTEST madt lapics="
s_enabled:      .asciz " enabled="
s_done:         .asciz "RXLTEST done\n"

        .bss
        .p2align 4
sdt_step:       .skip 4
stack:          .skip 4096
stack_top:

        .section .note.GNU-stack, "", @progbits
