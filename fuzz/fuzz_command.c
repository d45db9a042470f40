/*
 * libFuzzer target for smtp_command_parse and the MAIL/RCPT parameter
 * parsers. The first byte picks the extension policy; the rest is one
 * command line, driven the way the server does: verb, path, parameters.
 */
#include "smtp/smtp_address.h"
#include "smtp/smtp_command.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool
inside(struct str part, struct str whole)
{
    return part.ptr >= whole.ptr && part.ptr + part.len <= whole.ptr + whole.len;
}

static void
check_error(const struct smtp_reply *err)
{
    if ((err->code != 501 && err->code != 555) || strcmp(err->status, "5.5.4") != 0)
        abort();
}

static void
fuzz_mail_params(struct str in, const struct smtp_param_policy *pol)
{
    struct smtp_mail_params mp;
    struct smtp_reply err;

    if (smtp_mail_params_parse(in, pol, &mp, &err) != 0) {
        check_error(&err);
        return;
    }
    if (strlen(mp.envid) > SMTP_ENVID_MAX || (mp.has_size && !pol->size))
        abort();
    if ((mp.body == SMTP_BODY_8BITMIME && !pol->eightbit) ||
        (mp.body == SMTP_BODY_BINARYMIME && !pol->binarymime) || (mp.smtputf8 && !pol->smtputf8))
        abort();
}

static void
fuzz_rcpt_params(struct str in, const struct smtp_param_policy *pol)
{
    struct smtp_rcpt_params rp;
    struct smtp_reply err;

    if (smtp_rcpt_params_parse(in, pol, &rp, &err) != 0) {
        check_error(&err);
        return;
    }
    if (strlen(rp.orcpt) > SMTP_ORCPT_MAX || (rp.notify > 15))
        abort();
    if ((rp.notify & SMTP_NOTIFY_NEVER) && rp.notify != SMTP_NOTIFY_NEVER)
        abort();
    if ((rp.notify != 0 || rp.orcpt[0] != '\0') && !pol->dsn)
        abort();
}

/* "FROM:<path> params" / "TO:<path> params", as the server would split it. */
static void
fuzz_path_and_params(const struct smtp_command *cmd, const struct smtp_param_policy *pol)
{
    bool is_mail = cmd->verb == SMTP_CMD_MAIL;
    const char *prefix = is_mail ? "FROM:" : "TO:";
    struct str args = cmd->args, rest;
    struct smtp_path path;
    struct smtp_reply err;

    if (!str_iprefix(args, prefix))
        return;
    args.ptr += strlen(prefix);
    args.len -= strlen(prefix);
    if (smtp_path_parse(args, is_mail ? SMTP_PATH_SENDER : SMTP_PATH_RECIPIENT, pol->smtputf8,
                        &path, &rest, &err) != 0)
        return;
    if (!inside(rest, args))
        abort();
    if (is_mail)
        fuzz_mail_params(str_trim(rest), pol);
    else
        fuzz_rcpt_params(str_trim(rest), pol);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct smtp_param_policy pol;
    struct smtp_command cmd;
    struct str line;
    char *copy;

    if (size == 0)
        return 0;
    pol = (struct smtp_param_policy){data[0] & 1, data[0] & 2, data[0] & 4, data[0] & 8,
                                     data[0] & 16};
    copy = malloc(size - 1 ? size - 1 : 1); /* exact size: overreads trip ASan */
    if (copy == NULL)
        return 0;
    memcpy(copy, data + 1, size - 1);
    line = str_make(copy, size - 1);
    smtp_command_parse(line, &cmd);
    if (!inside(cmd.name, line) || !inside(cmd.args, line) || smtp_verb_name(cmd.verb) == NULL)
        abort();
    if (cmd.verb == SMTP_CMD_MAIL || cmd.verb == SMTP_CMD_RCPT)
        fuzz_path_and_params(&cmd, &pol);
    fuzz_mail_params(line, &pol);
    fuzz_rcpt_params(line, &pol);
    free(copy);
    return 0;
}
