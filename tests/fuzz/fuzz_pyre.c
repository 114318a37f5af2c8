/*
 * fuzz_pyre.c - the Python-re matcher of the NLU plugins
 * (plugins/common/pyre.h), which compiles patterns from users' training
 * data: input = flags byte, pattern, NUL, text.  A pattern compiles or is
 * refused with a message; every match of finditer lies in the text and
 * they move forward; the step limit bounds the work.  The text also goes
 * through the Unicode helpers the tokenizers use (plugins/common/text.h).
 */
#define FUZZ_NAME "pyre"
#include "fuzz.h"

#include "../../plugins/common/pyre.h"
#include "../../plugins/common/text.h"

static void fuzz_fail(const char *what)
{
	fprintf(stderr, "fuzz: property broken: %s\n", what);
	abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	int flags = data[0] & 1 ? PYRE_IGNORECASE : 0;
	const char *p = (const char *)data + 1;
	size_t rest = size - 1;
	const char *nul = memchr(p, '\0', rest);
	if (!nul)
		return 0;
	size_t tl = rest - (size_t)(nul - p) - 1;
	const char *t = nul + 1;
	if (memchr(t, '\0', tl))
		return 0;
	/* the text helpers on any bytes */
	size_t ll = 0, n = 0, b, e;
	char *low = text_lower(t, tl, &ll);
	if (!low || ll > 2 * tl || strlen(low) != ll)
		fuzz_fail("str.lower() at most doubles even bad UTF-8");
	free(low);
	(void)text_str_islower(t, tl);
	(void)text_str_istitle(t, tl);
	text_slice(t, tl, -3, &b, &e);
	if (b > e || e != tl)
		fuzz_fail("a suffix ends the text");
	uint32_t *cp = text_decode(t, tl, &n, NULL);
	if (!cp)
		return 0;
	pyre *re = NULL;
	char msg[256];
	int rc = pyre_compile(p, flags, &re, msg, sizeof msg);
	if (rc == PYRE_ESYNTAX && !msg[0])
		fuzz_fail("a refusal says why");
	if (rc == 0) {
		size_t s = 0, me = 0, g[2], pos = 0, count = 0;
		int adv = 0;
		while (pos <= n && count++ < 1000) {
			int r = pyre_search(re, cp, n, pos, adv, &s, &me, g);
			if (r != 1)
				break;
			if (s < pos || me < s || me > n || (adv && s == pos && me == s))
				fuzz_fail("matches lie in the text and move forward");
			if (g[0] != (size_t)-1 && (g[0] > g[1] || g[1] > n))
				fuzz_fail("group 1 lies in the text");
			pos = me;
			adv = me == s;
		}
		pyre_free(re);
	} else if (re) {
		fuzz_fail("no pattern after a refusal");
	}
	free(cp);
	return 0;
}
