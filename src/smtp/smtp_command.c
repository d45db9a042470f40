/*
 * Command line splitting (RFC 5321 4.1.1) and the ESMTP parameters of MAIL
 * and RCPT: SIZE (RFC 1870), BODY (RFC 6152, RFC 3030), SMTPUTF8 (RFC 6531),
 * RET/ENVID/NOTIFY/ORCPT (RFC 3461). Table driven; every value is checked
 * against its grammar before it is stored. Depends on base/ only.
 */
#include "smtp/smtp_command.h"

#include <string.h>

static const struct {
    enum smtp_verb verb;
    const char *name;
} verbs[] = {
    {SMTP_CMD_HELO, "HELO"}, {SMTP_CMD_EHLO, "EHLO"},         {SMTP_CMD_MAIL, "MAIL"},
    {SMTP_CMD_RCPT, "RCPT"}, {SMTP_CMD_DATA, "DATA"},         {SMTP_CMD_BDAT, "BDAT"},
    {SMTP_CMD_RSET, "RSET"}, {SMTP_CMD_NOOP, "NOOP"},         {SMTP_CMD_QUIT, "QUIT"},
    {SMTP_CMD_HELP, "HELP"}, {SMTP_CMD_VRFY, "VRFY"},         {SMTP_CMD_EXPN, "EXPN"},
    {SMTP_CMD_SEND, "SEND"}, {SMTP_CMD_SOML, "SOML"},         {SMTP_CMD_SAML, "SAML"},
    {SMTP_CMD_TURN, "TURN"}, {SMTP_CMD_ETRN, "ETRN"},         {SMTP_CMD_ATRN, "ATRN"},
    {SMTP_CMD_AUTH, "AUTH"}, {SMTP_CMD_STARTTLS, "STARTTLS"},
};

#define NITEMS(a) (sizeof(a) / sizeof((a)[0]))

static bool
is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool
is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool
is_letters(struct str s)
{
    for (size_t i = 0; i < s.len; i++)
        if (!is_alpha(s.ptr[i]))
            return false;
    return s.len > 0;
}

/* RFC 5321 4.1.1: verb [SP args]. Only SP ends the verb ("MAIL:x" is unknown). */
void
smtp_command_parse(struct str line, struct smtp_command *out)
{
    struct str args = line;

    out->name = str_cut(&args, ' ');
    out->args = args;
    out->verb = SMTP_CMD_UNKNOWN;
    if (!is_letters(out->name))
        return;
    for (size_t i = 0; i < NITEMS(verbs); i++) {
        if (str_ieq(out->name, verbs[i].name)) {
            out->verb = verbs[i].verb;
            return;
        }
    }
}

const char *
smtp_verb_name(enum smtp_verb v)
{
    for (size_t i = 0; i < NITEMS(verbs); i++)
        if (verbs[i].verb == v)
            return verbs[i].name;
    return "";
}

/* One "keyword[=value]" of RFC 5321 4.1.2 esmtp-param. */
struct param {
    struct str keyword;
    bool has_value;
    struct str value;
};

enum param_ext { EXT_SIZE, EXT_BODY, EXT_SMTPUTF8, EXT_DSN, EXT_AUTH };

struct param_def {
    const char *keyword;
    enum param_ext ext;
    int (*parse)(const struct param *, const struct smtp_param_policy *, void *out,
                 struct smtp_reply *);
};

static bool
ext_offered(const struct smtp_param_policy *pol, enum param_ext ext)
{
    switch (ext) {
    case EXT_SIZE:
        return pol->size;
    case EXT_BODY: /* BODY belongs to 8BITMIME (RFC 6152) and BINARYMIME (RFC 3030) */
        return pol->eightbit || pol->binarymime;
    case EXT_SMTPUTF8:
        return pol->smtputf8;
    case EXT_DSN:
        return pol->dsn;
    case EXT_AUTH:
        return pol->auth;
    }
    return false;
}

static int
bad_value(const struct param *p, struct smtp_reply *err)
{
    return smtp_reply_set(err, 501, "5.5.4", "bad %.*s parameter value", (int)p->keyword.len,
                          p->keyword.ptr);
}

static int
need_value(const struct param *p, struct smtp_reply *err)
{
    if (p->has_value)
        return 0;
    return smtp_reply_set(err, 501, "5.5.4", "%.*s parameter requires a value", (int)p->keyword.len,
                          p->keyword.ptr);
}

/* RFC 3461 4: xchar = %d33-126 except "+" and "="; hexchar = "+" 2UPHEX. */
static bool
is_xtext(struct str s)
{
    for (size_t i = 0; i < s.len; i++) {
        char c = s.ptr[i];

        if (c == '+') {
            if (s.len - i < 3)
                return false;
            for (size_t k = 1; k <= 2; k++)
                if (!is_digit(s.ptr[i + k]) && !(s.ptr[i + k] >= 'A' && s.ptr[i + k] <= 'F'))
                    return false;
            i += 2;
        } else if (c < 33 || c > 126 || c == '=') {
            return false;
        }
    }
    return true;
}

/* RFC 1870: size-value = 1*20DIGIT, must fit in 64 bits. */
static int
parse_size(const struct param *p, const struct smtp_param_policy *pol, void *out,
           struct smtp_reply *err)
{
    struct smtp_mail_params *mp = out;
    uint64_t v = 0;

    (void)pol;
    if (need_value(p, err) < 0)
        return -1;
    if (p->value.len > 20)
        return bad_value(p, err);
    for (size_t i = 0; i < p->value.len; i++) {
        unsigned d = (unsigned)(p->value.ptr[i] - '0');

        if (!is_digit(p->value.ptr[i]) || v > (UINT64_MAX - d) / 10)
            return bad_value(p, err);
        v = v * 10 + d;
    }
    mp->has_size = true;
    mp->size = v;
    return 0;
}

/* RFC 6152 "7BIT" / "8BITMIME"; RFC 3030 "BINARYMIME" only when offered. */
static int
parse_body(const struct param *p, const struct smtp_param_policy *pol, void *out,
           struct smtp_reply *err)
{
    struct smtp_mail_params *mp = out;

    if (need_value(p, err) < 0)
        return -1;
    if (str_ieq(p->value, "7BIT"))
        mp->body = SMTP_BODY_7BIT;
    else if (str_ieq(p->value, "8BITMIME") && pol->eightbit)
        mp->body = SMTP_BODY_8BITMIME;
    else if (str_ieq(p->value, "BINARYMIME") && pol->binarymime)
        mp->body = SMTP_BODY_BINARYMIME;
    else
        return bad_value(p, err);
    return 0;
}

/* RFC 6531 3.4: "If this parameter is provided, it MUST not accept a value." */
static int
parse_smtputf8(const struct param *p, const struct smtp_param_policy *pol, void *out,
               struct smtp_reply *err)
{
    struct smtp_mail_params *mp = out;

    (void)pol;
    if (p->has_value)
        return smtp_reply_set(err, 501, "5.5.4", "SMTPUTF8 parameter takes no value");
    mp->smtputf8 = true;
    return 0;
}

/* RFC 3461 4.3: FULL / HDRS, any case. */
static int
parse_ret(const struct param *p, const struct smtp_param_policy *pol, void *out,
          struct smtp_reply *err)
{
    struct smtp_mail_params *mp = out;

    (void)pol;
    if (need_value(p, err) < 0)
        return -1;
    if (str_ieq(p->value, "FULL"))
        mp->ret = SMTP_RET_FULL;
    else if (str_ieq(p->value, "HDRS"))
        mp->ret = SMTP_RET_HDRS;
    else
        return bad_value(p, err);
    return 0;
}

/* RFC 3461 4.4: xtext of at most 100 characters, kept encoded. */
static int
parse_envid(const struct param *p, const struct smtp_param_policy *pol, void *out,
            struct smtp_reply *err)
{
    struct smtp_mail_params *mp = out;

    (void)pol;
    if (need_value(p, err) < 0)
        return -1;
    if (p->value.len > SMTP_ENVID_MAX || !is_xtext(p->value))
        return bad_value(p, err);
    return str_copy(p->value, mp->envid, sizeof(mp->envid)) ? 0 : bad_value(p, err);
}

/* RFC 4954 5: AUTH=xtext (a mailbox or "<>"); checked, then ignored. */
static int
parse_auth(const struct param *p, const struct smtp_param_policy *pol, void *out,
           struct smtp_reply *err)
{
    (void)pol;
    (void)out;
    if (need_value(p, err) < 0)
        return -1;
    if (p->value.len > 500 || !is_xtext(p->value))
        return bad_value(p, err);
    return 0;
}

static unsigned
notify_bit(struct str word)
{
    if (str_ieq(word, "NEVER"))
        return SMTP_NOTIFY_NEVER;
    if (str_ieq(word, "SUCCESS"))
        return SMTP_NOTIFY_SUCCESS;
    if (str_ieq(word, "FAILURE"))
        return SMTP_NOTIFY_FAILURE;
    if (str_ieq(word, "DELAY"))
        return SMTP_NOTIFY_DELAY;
    return 0;
}

/* RFC 3461 4.1: "NEVER" / 1#("SUCCESS" / "FAILURE" / "DELAY"), NEVER alone. */
static int
parse_notify(const struct param *p, const struct smtp_param_policy *pol, void *out,
             struct smtp_reply *err)
{
    struct smtp_rcpt_params *rp = out;
    struct str list = p->value;
    unsigned bits = 0;

    (void)pol;
    if (need_value(p, err) < 0)
        return -1;
    while (list.len > 0) {
        bool last = memchr(list.ptr, ',', list.len) == NULL;
        unsigned bit = notify_bit(str_cut(&list, ','));

        if (bit == 0 || (!last && list.len == 0)) /* unknown word or trailing comma */
            return bad_value(p, err);
        bits |= bit;
    }
    if ((bits & SMTP_NOTIFY_NEVER) && bits != SMTP_NOTIFY_NEVER)
        return smtp_reply_set(err, 501, "5.5.4", "NOTIFY=NEVER cannot be combined");
    rp->notify = bits;
    return 0;
}

/* RFC 5322 3.2.3 atext, for the ORCPT addr-type atom. */
static bool
is_atom(struct str s)
{
    for (size_t i = 0; i < s.len; i++) {
        char c = s.ptr[i];

        if (!is_alpha(c) && !is_digit(c) && (c == '\0' || !strchr("!#$%&'*+-/=?^_`{|}~", c)))
            return false;
    }
    return s.len > 0;
}

/* RFC 3461 4.2: addr-type ";" xtext, the whole at most 500 characters. */
static int
parse_orcpt(const struct param *p, const struct smtp_param_policy *pol, void *out,
            struct smtp_reply *err)
{
    struct smtp_rcpt_params *rp = out;
    struct str addr = p->value;
    struct str type;

    (void)pol;
    if (need_value(p, err) < 0)
        return -1;
    if (p->value.len > SMTP_ORCPT_MAX || memchr(addr.ptr, ';', addr.len) == NULL)
        return bad_value(p, err);
    type = str_cut(&addr, ';');
    if (!is_atom(type) || !is_xtext(addr))
        return bad_value(p, err);
    return str_copy(p->value, rp->orcpt, sizeof(rp->orcpt)) ? 0 : bad_value(p, err);
}

static const struct param_def mail_params[] = {
    {"SIZE", EXT_SIZE, parse_size},
    {"BODY", EXT_BODY, parse_body},
    {"SMTPUTF8", EXT_SMTPUTF8, parse_smtputf8},
    {"RET", EXT_DSN, parse_ret},
    {"ENVID", EXT_DSN, parse_envid},
    {"AUTH", EXT_AUTH, parse_auth},
};

static const struct param_def rcpt_params[] = {
    {"NOTIFY", EXT_DSN, parse_notify},
    {"ORCPT", EXT_DSN, parse_orcpt},
};

/* esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-") */
static bool
is_esmtp_keyword(struct str s)
{
    if (s.len == 0 || s.ptr[0] == '-')
        return false;
    for (size_t i = 0; i < s.len; i++)
        if (!is_alpha(s.ptr[i]) && !is_digit(s.ptr[i]) && s.ptr[i] != '-')
            return false;
    return true;
}

/* esmtp-value = 1*(%d33-60 / %d62-126); ours are all ASCII. */
static bool
is_esmtp_value(struct str s)
{
    for (size_t i = 0; i < s.len; i++)
        if (s.ptr[i] < 33 || s.ptr[i] > 126 || s.ptr[i] == '=')
            return false;
    return s.len > 0;
}

/* Splits one SP-free token into keyword and optional "=value". */
static int
param_split(struct str token, struct param *p, struct smtp_reply *err)
{
    p->has_value = memchr(token.ptr, '=', token.len) != NULL;
    p->keyword = str_cut(&token, '=');
    p->value = token;
    if (!is_esmtp_keyword(p->keyword))
        return smtp_reply_set(err, 501, "5.5.4", "malformed parameter keyword");
    if (p->has_value && !is_esmtp_value(p->value))
        return smtp_reply_set(err, 501, "5.5.4", "malformed %.*s parameter value",
                              (int)p->keyword.len, p->keyword.ptr);
    return 0;
}

/* Looks the keyword up; 555 when unknown or its extension is not offered. */
static const struct param_def *
param_lookup(const struct param *p, const struct param_def *defs, size_t ndefs,
             const struct smtp_param_policy *pol, size_t *index, struct smtp_reply *err)
{
    for (size_t i = 0; i < ndefs; i++) {
        if (!str_ieq(p->keyword, defs[i].keyword))
            continue;
        if (!ext_offered(pol, defs[i].ext)) {
            smtp_reply_set(err, 555, "5.5.4", "%s parameter not implemented", defs[i].keyword);
            return NULL;
        }
        *index = i;
        return &defs[i];
    }
    /* RFC 5321 4.1.1.11; the keyword is echoed, clipped, only after its syntax check */
    smtp_reply_set(err, 555, "5.5.4", "%.*s parameter not recognized",
                   (int)(p->keyword.len > 32 ? 32 : p->keyword.len), p->keyword.ptr);
    return NULL;
}

/* Mail-parameters = esmtp-param *(SP esmtp-param); extra SPs tolerated. */
static int
params_parse(struct str in, const struct param_def *defs, size_t ndefs,
             const struct smtp_param_policy *pol, void *out, struct smtp_reply *err)
{
    unsigned seen = 0;

    for (;;) {
        const struct param_def *def;
        struct param p;
        size_t index = 0;

        while (in.len > 0 && in.ptr[0] == ' ') {
            in.ptr++;
            in.len--;
        }
        if (in.len == 0)
            return 0;
        if (param_split(str_cut(&in, ' '), &p, err) < 0)
            return -1;
        def = param_lookup(&p, defs, ndefs, pol, &index, err);
        if (def == NULL)
            return -1;
        if (seen & (1u << index)) /* RFC 3461 4.5 asks for 501 too */
            return smtp_reply_set(err, 501, "5.5.4", "duplicate %s parameter", def->keyword);
        seen |= 1u << index;
        if (def->parse(&p, pol, out, err) < 0)
            return -1;
    }
}

int
smtp_mail_params_parse(struct str in, const struct smtp_param_policy *pol,
                       struct smtp_mail_params *out, struct smtp_reply *err)
{
    memset(out, 0, sizeof(*out));
    return params_parse(in, mail_params, NITEMS(mail_params), pol, out, err);
}

int
smtp_rcpt_params_parse(struct str in, const struct smtp_param_policy *pol,
                       struct smtp_rcpt_params *out, struct smtp_reply *err)
{
    memset(out, 0, sizeof(*out));
    return params_parse(in, rcpt_params, NITEMS(rcpt_params), pol, out, err);
}
