/*
 * cdump: load xl.cfg files with Xen's libxlutil and print what it sees, as JSON.
 *
 * Used by the differential test to compare rxl's parser with the real one.
 *
 * Input (stdin), one job per line, fields separated by TAB:
 *     PATH <TAB> KEY <TAB> KEY ...
 * libxlutil cannot list the keys it holds, so the caller names the candidates; keys that
 * are not set are left out of the output.
 *
 * Output (stdout), one JSON object per job, in order:
 *     {"ok":true,"values":{"key":"text","list":["a",["nested"]]}}
 *     {"ok":false,"err":22,"report":"messages libxlutil printed"}
 * Strings and numbers are both JSON strings (libxlutil stores numbers as their text).
 * Lists are walked with xlu_cfg_get_listitem2, so nested lists are printed in full.
 */

#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxlutil.h>

static void put_json_string(FILE *out, const char *s, size_t len)
{
    size_t i;

    fputc('"', out);
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            fprintf(out, "\\%c", c);
        else if (c < 0x20 || c == 0x7f)
            fprintf(out, "\\u%04x", c);
        else
            fputc(c, out);
    }
    fputc('"', out);
}

static void put_value(FILE *out, const XLU_Config *cfg, XLU_ConfigValue *v, int depth)
{
    if (xlu_cfg_value_type(v) == XLU_STRING) {
        char *s = NULL;
        if (xlu_cfg_value_get_string(cfg, v, &s, 1) || !s)
            fputs("null", out);
        else
            put_json_string(out, s, strlen(s));
    } else {
        XLU_ConfigList *list = NULL;
        XLU_ConfigValue *item;
        int i;

        if (depth > 10000 || xlu_cfg_value_get_list(cfg, v, &list, 1) || !list) {
            fputs("null", out);
            return;
        }
        fputc('[', out);
        for (i = 0; (item = xlu_cfg_get_listitem2(list, i)) != NULL; i++) {
            if (i)
                fputc(',', out);
            put_value(out, cfg, item, depth + 1);
        }
        fputc(']', out);
    }
}

static void run_job(FILE *out, char *line)
{
    char *path = strtok(line, "\t");
    char *report_buf = NULL;
    size_t report_len = 0;
    FILE *report;
    XLU_Config *cfg;
    char *key;
    int e, first = 1;

    if (!path) {
        fputs("{\"ok\":false,\"err\":-1,\"report\":\"empty job\"}\n", out);
        return;
    }
    report = open_memstream(&report_buf, &report_len);
    if (!report) {
        perror("open_memstream");
        exit(2);
    }
    cfg = xlu_cfg_init(report, path);
    if (!cfg) {
        perror("xlu_cfg_init");
        exit(2);
    }
    e = xlu_cfg_readfile(cfg, path);
    if (e) {
        fflush(report);
        fprintf(out, "{\"ok\":false,\"err\":%d,\"report\":", e);
        put_json_string(out, report_buf ? report_buf : "", report_len);
        fputs("}\n", out);
    } else {
        fputs("{\"ok\":true,\"values\":{", out);
        while ((key = strtok(NULL, "\t")) != NULL) {
            XLU_ConfigList *list = NULL;
            const char *s = NULL;
            int n = 0, i;

            if (!xlu_cfg_get_list(cfg, key, &list, &n, 1)) {
                if (!first)
                    fputc(',', out);
                first = 0;
                put_json_string(out, key, strlen(key));
                fputs(":[", out);
                for (i = 0; i < n; i++) {
                    if (i)
                        fputc(',', out);
                    put_value(out, cfg, xlu_cfg_get_listitem2(list, i), 1);
                }
                fputc(']', out);
            } else if (!xlu_cfg_get_string(cfg, key, &s, 1)) {
                if (!first)
                    fputc(',', out);
                first = 0;
                put_json_string(out, key, strlen(key));
                fputc(':', out);
                put_json_string(out, s, strlen(s));
            }
        }
        fputs("}}\n", out);
    }
    xlu_cfg_destroy(cfg);
    fclose(report);
    free(report_buf);
    fflush(out);
}

int main(void)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;

    while ((len = getline(&line, &cap, stdin)) >= 0) {
        if (len > 0 && line[len - 1] == '\n')
            line[len - 1] = 0;
        run_job(stdout, line);
    }
    free(line);
    return 0;
}
