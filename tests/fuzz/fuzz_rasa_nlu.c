/*
 * fuzz_rasa_nlu.c - the Rasa nlu reader: train_rasa_nlu_parse()
 * (<train/rasa.h>) of the input as one YAML file, then, when it reads,
 * its graph value, which must decode and encode back to the same bytes.
 * train_rasa_classify() runs on the same text.
 *
 * When the NLU fast path (rasa_nlu.c) takes the input, what it reads must
 * be what the libyaml path reads: the same result or error, every field
 * and place, the same diagnostics; both for the text as given and for a
 * copy the result keeps (plain example texts then stay in it, as for a
 * file read); with the line scanner picked by the input's size.
 */
#define FUZZ_NAME "rasa_nlu"
#include "fuzz.h"

#include "fuzz_rasa.h"
#include "rasa_private.h"

#include <stdarg.h>

static int encode(const void *x, train_value **out, train_error *err)
{
	return train_rasa_nlu_to_value(x, out, err);
}

static void release(void *x)
{
	train_rasa_nlu_free(x);
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

static const char *s_(const char *s) { return s ? s : "(null)"; }

static void add_loc(sbuf *b, train_rasa_loc l)
{
	add(b, " @%s:%u:%u\n", s_(l.file), l.line, l.col);
}

/* Everything read, as text. */
static char *read_dump(const uint8_t *data, size_t size, int fast, bool kept)
{
	train_rasa_diags *d;
	train_rasa_nlu *x = NULL;
	train_error err;
	memset(&err, 0, sizeof err);
	if (train_rasa_diags_create(&d))
		fuzz_fail("diags_create");
	int was = rasa_nlu_fast;
	rasa_nlu_fast = fast;
	int rc = kept ? rasa_nlu_parse_kept((const char *)data, size, "fuzz.yml", &x, d, &err)
	              : train_rasa_nlu_parse((const char *)data, size, "fuzz.yml", &x, d, &err);
	rasa_nlu_fast = was;
	sbuf b = { 0 };
	add(&b, "rc %d", rc);
	if (rc)
		add(&b, " %s:%u:%u %s", err.file, err.line, err.col, err.text);
	add(&b, "\n");
	for (size_t i = 0; x && i < x->n_messages; i++) {
		const train_rasa_message *m = &x->messages[i];
		if (strlen(m->text) != m->text_len)
			fuzz_fail("a text's length is its text_len");
		add(&b, "M %s|%u|%u|%s|%s|%s|%s", m->text, m->text_len, m->text_chars, s_(m->intent),
		    s_(m->response_key), s_(m->metadata), s_(m->intent_metadata));
		add_loc(&b, m->loc);
		for (size_t k = 0; k < m->n_entities; k++) {
			const train_rasa_entity *e = &m->entities[k];
			add(&b, " E %s|%s|%s|%s|%u|%u|%u|%u\n", s_(e->entity), s_(e->value), s_(e->role),
			    s_(e->group), e->start, e->end, e->byte_start, e->byte_end);
		}
	}
	for (size_t i = 0; x && i < x->n_synonyms; i++) {
		add(&b, "S %s", s_(x->synonyms[i].value));
		add_loc(&b, x->synonyms[i].loc);
		for (size_t k = 0; k < x->synonyms[i].names.n; k++)
			add(&b, " <- %s\n", s_(x->synonyms[i].names.v[k]));
	}
	const train_rasa_named_list *lists[2] = { x ? x->regexes : NULL, x ? x->lookups : NULL };
	size_t counts[2] = { x ? x->n_regexes : 0, x ? x->n_lookups : 0 };
	for (int t = 0; t < 2; t++)
		for (size_t i = 0; i < counts[t]; i++) {
			add(&b, "%c %s", "RL"[t], s_(lists[t][i].name));
			add_loc(&b, lists[t][i].loc);
			for (size_t k = 0; k < lists[t][i].items.n; k++)
				add(&b, " - %s\n", s_(lists[t][i].items.v[k]));
		}
	add(&b, "responses %zu\n", x ? x->n_responses : 0);
	for (size_t i = 0; i < train_rasa_diags_len(d); i++) {
		const train_rasa_diag *g = train_rasa_diags_at(d, i);
		add(&b, "D %d %s:%u:%u %s\n", (int)g->severity, s_(g->file), g->line, g->col, s_(g->text));
	}
	train_rasa_nlu_free(x);
	train_rasa_diags_destroy(d);
	return b.p;
}

static void check_fast_path(const uint8_t *data, size_t size)
{
	if (!rasa_nlu_fast_accepts((const char *)data, size))
		return;
	/* a line scanner (SSE2, AVX2, AVX-512BW batched or a line at a time, as
	 * the processor has them) by the size */
	rasa_nlu_fast_isa = 1 + (int)(size % 4);
	for (int kept = 0; kept < 2; kept++) {
		char *a = read_dump(data, size, 1, kept), *b = read_dump(data, size, 0, kept);
		if (strcmp(a, b) != 0) {
			fprintf(stderr, "--- fast path\n%s--- libyaml\n%s", a, b);
			fuzz_fail("the fast path reads what libyaml reads");
		}
		free(a);
		free(b);
	}
	rasa_nlu_fast_isa = 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	train_rasa_diags *diags;
	train_rasa_nlu *x = NULL;
	train_error err;
	int kinds;
	if (train_rasa_diags_create(&diags))
		fuzz_fail("diags_create");
	(void)train_rasa_classify((const char *)data, size, "fuzz.yml", &kinds, &err);
	int rc = train_rasa_nlu_parse((const char *)data, size, "fuzz.yml", &x, diags, &err);
	if ((rc == TRAIN_OK) != (x != NULL))
		fuzz_fail("a result exactly when parsing succeeds");
	if (rc != TRAIN_OK && train_rasa_diags_count(diags, TRAIN_RASA_ERROR) == 0)
		fuzz_fail("an error is also in the diagnostics");
	fuzz_check_diags(diags);
	if (x) {
		train_value *v = NULL;
		if (train_rasa_nlu_to_value(x, &v, &err) != TRAIN_OK)
			fuzz_fail("what was read must encode");
		fuzz_check_value(v, encode, release);
		train_value_unref(v);
	}
	train_rasa_nlu_free(x);
	train_rasa_diags_destroy(diags);
	check_fast_path(data, size);
	return 0;
}
