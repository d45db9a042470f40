/*
 * libFuzzer target for the config parser: the tokenizer, every directive
 * handler and the error paths. Beyond memory safety it checks the error
 * contract: on failure err is exactly one line starting with the file name.
 * Table files named by the input are opened relative to the working
 * directory; only regular files are read.
 */
#include "config/config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char name[] = "fuzz.conf";
    char err[512];
    struct config *cf;
    char *text = malloc(size + 1);

    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    err[0] = '\0';
    cf = config_parse_string(name, text, err, sizeof(err));
    if (cf != NULL) {
        config_unref(config_ref(cf));
        config_unref(cf);
    } else if (strncmp(err, name, sizeof(name) - 1) != 0 || strchr(err, '\n') != NULL) {
        abort(); /* the one-line "FILE:LINE: problem" contract is broken */
    }
    free(text);
    return 0;
}
