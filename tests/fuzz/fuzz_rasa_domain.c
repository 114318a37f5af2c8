/*
 * fuzz_rasa_domain.c - the Rasa domain reader: train_rasa_domain_parse()
 * (<train/rasa.h>) of the input as one YAML file, then, when it reads,
 * its graph value, which must decode and encode back to the same bytes.
 * train_rasa_classify() runs on the same text.
 *
 * When the domain fast path (rasa_domain.c) takes a text, what it reads
 * must be what the libyaml path reads: the same result or error, the same
 * content (the value's bytes), places and diagnostics.  That is checked on
 * the input, and on a domain file made from it in about the fast path's
 * shape (see shaped()), so that mutations stay near what it takes.
 */
#define FUZZ_NAME "rasa_domain"
#include "fuzz.h"

#include "fuzz_rasa.h"
#include "rasa_private.h"

#include <stdarg.h>
#include <train/value.h>

static int encode(const void *x, train_value **out, train_error *err)
{
	return train_rasa_domain_to_value(x, out, err);
}

static void release(void *x)
{
	train_rasa_domain_free(x);
}

typedef struct sbuf {
	char *p;
	size_t len, cap;
} sbuf;

static void add(sbuf *b, const char *fmt, ...) TRAIN_PRINTF(2, 3);
static void add(sbuf *b, const char *fmt, ...)
{
	va_list ap, aq;
	va_start(ap, fmt);
	va_copy(aq, ap);
	int n = vsnprintf(NULL, 0, fmt, aq);
	va_end(aq);
	if (n < 0)
		fuzz_fail("vsnprintf");
	if (b->len + (size_t)n + 1 > b->cap) {
		b->cap = (b->len + (size_t)n + 1) * 2;
		if (!(b->p = realloc(b->p, b->cap)))
			fuzz_fail("out of memory");
	}
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
	va_end(ap);
}

static void add_bytes(sbuf *b, const void *p, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		b->cap = (b->len + n + 1) * 2;
		if (!(b->p = realloc(b->p, b->cap)))
			fuzz_fail("out of memory");
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static const char *s_(const char *s) { return s ? s : "(null)"; }

#define LOC(l) s_((l).file), (l).line, (l).col

static char *read_dump(const char *text, size_t size, int fast)
{
	train_rasa_diags *d;
	train_rasa_domain *x = NULL;
	train_error err;
	memset(&err, 0, sizeof err);
	if (train_rasa_diags_create(&d))
		fuzz_fail("diags_create");
	int was = rasa_domain_fast;
	rasa_domain_fast = fast;
	int rc = train_rasa_domain_parse(text, size, "fuzz.yml", &x, d, &err);
	rasa_domain_fast = was;
	sbuf b = { 0 };
	add(&b, "rc %d", rc);
	if (rc)
		add(&b, " %s:%u:%u %s", err.file, err.line, err.col, err.text);
	add(&b, "\n");
	if (x) {
		train_value *v = NULL;
		if (train_rasa_domain_to_value(x, &v, &err) != TRAIN_OK)
			fuzz_fail("what was read must encode");
		char hex[TRAIN_FP_HEX];
		add(&b, "value %zu %s\nversion %s\n", train_value_size(v),
		    train_fp_hex(train_value_fp(v), hex), s_(x->version));
		train_value_unref(v);
		for (size_t i = 0; i < x->n_intents; i++)
			add(&b, "I %s %s:%u:%u\n", x->intents[i].name, LOC(x->intents[i].loc));
		for (size_t i = 0; i < x->n_entities; i++)
			add(&b, "E %s %s:%u:%u\n", x->entities[i].name, LOC(x->entities[i].loc));
		for (size_t i = 0; i < x->n_slots; i++)
			add(&b, "S %s %s:%u:%u\n", x->slots[i].name, LOC(x->slots[i].loc));
		for (size_t i = 0; i < x->n_actions; i++)
			add(&b, "A %s %s:%u:%u\n", x->actions[i].name, LOC(x->actions[i].loc));
		for (size_t i = 0; i < x->n_forms; i++)
			add(&b, "F %s %s:%u:%u\n", x->forms[i].name, LOC(x->forms[i].loc));
		for (size_t i = 0; i < x->n_responses; i++) {
			const train_rasa_response *r = &x->responses[i];
			add(&b, "R %s %s:%u:%u\n", r->name, LOC(r->loc));
			for (size_t k = 0; k < r->n_variations; k++)
				add(&b, " - %s:%u:%u\n", LOC(r->variations[k].loc));
		}
	}
	for (size_t i = 0; i < train_rasa_diags_len(d); i++) {
		const train_rasa_diag *g = train_rasa_diags_at(d, i);
		add(&b, "D %d %s:%u:%u %s\n", (int)g->severity, s_(g->file), g->line, g->col, s_(g->text));
	}
	train_rasa_domain_free(x);
	train_rasa_diags_destroy(d);
	return b.p;
}

static void check_fast_path(const char *text, size_t size)
{
	if (!rasa_domain_fast_accepts(text, size))
		return;
	char *a = read_dump(text, size, 1), *b = read_dump(text, size, 0);
	if (strcmp(a, b) != 0) {
		fprintf(stderr, "--- fast path\n%s--- libyaml\n%s", a, b);
		fuzz_fail("the fast path reads what libyaml reads");
	}
	free(a);
	free(b);
}

/* A domain file from the input's lines: the first byte of each picks what
 * the line becomes, the rest is its name, text or value as it stands. */
static char *shaped(const uint8_t *data, size_t size, size_t *len)
{
	static const char *const heads[] = {
		"version: \"%s\"\n", "intents:\n", "entities:\n", "actions:\n", "responses:\n",
		"session_config:\n", "  - %s\n", "- %s\n", "  %s:\n", "  - text: \"%s\"\n",
		"  - text: %s\n", "    - text: '%s'\n", "  session_expiration_time: %s\n",
		"  carry_over_slots_to_new_session: %s\n", "\n", "%s\n",
	};
	sbuf b = { 0 };
	add(&b, "%s", "");
	size_t i = 0;
	while (i < size) {
		const uint8_t *nl = memchr(data + i, '\n', size - i);
		size_t e = nl ? (size_t)(nl - data) : size;
		if (e > i) {
			const char *h = heads[data[i] % (sizeof heads / sizeof heads[0])];
			const char *pct = strstr(h, "%s");
			add_bytes(&b, h, pct ? (size_t)(pct - h) : strlen(h));
			if (pct) {
				add_bytes(&b, data + i + 1, e - i - 1);
				add(&b, "%s", pct + 2);
			}
		}
		i = nl ? e + 1 : size;
	}
	*len = b.len;
	return b.p;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	train_rasa_diags *diags;
	train_rasa_domain *x = NULL;
	train_error err;
	int kinds;
	if (train_rasa_diags_create(&diags))
		fuzz_fail("diags_create");
	(void)train_rasa_classify((const char *)data, size, "fuzz.yml", &kinds, &err);
	int rc = train_rasa_domain_parse((const char *)data, size, "fuzz.yml", &x, diags, &err);
	if ((rc == TRAIN_OK) != (x != NULL))
		fuzz_fail("a result exactly when parsing succeeds");
	if (rc != TRAIN_OK && train_rasa_diags_count(diags, TRAIN_RASA_ERROR) == 0)
		fuzz_fail("an error is also in the diagnostics");
	fuzz_check_diags(diags);
	if (x) {
		train_value *v = NULL;
		if (train_rasa_domain_to_value(x, &v, &err) != TRAIN_OK)
			fuzz_fail("what was read must encode");
		fuzz_check_value(v, encode, release);
		train_value_unref(v);
	}
	train_rasa_domain_free(x);
	train_rasa_diags_destroy(diags);
	check_fast_path((const char *)data, size);
	size_t slen;
	char *s = shaped(data, size, &slen);
	check_fast_path(s, slen);
	free(s);
	return 0;
}
