/*
 * plugins/common/porter.c - the Porter stemmer.  See porter.h.
 *
 * The word is b[0..k] (k the index of its last letter); j marks the end of
 * the stem when a suffix has matched (b[0..j]).  The measure m of b[0..j]
 * is the number of vowel-consonant sequences in it: [C](VC){m}[V].
 */
#include <stdbool.h>
#include <string.h>

#include "porter.h"

typedef struct word {
	char *b;
	int k, j;
} word;

/* b[i] is a consonant: not a, e, i, o, u, and not a y after a consonant. */
static bool cons(const word *w, int i)
{
	switch (w->b[i]) {
	case 'a': case 'e': case 'i': case 'o': case 'u':
		return false;
	case 'y':
		return i == 0 ? true : !cons(w, i - 1);
	default:
		return true;
	}
}

/* The measure of b[0..j]. */
static int measure(const word *w)
{
	int n = 0, i = 0;
	while (i <= w->j && cons(w, i))
		i++;
	for (;;) {
		while (i <= w->j && !cons(w, i))
			i++;
		if (i > w->j)
			return n;
		while (i <= w->j && cons(w, i))
			i++;
		n++;
		if (i > w->j)
			return n;
	}
}

/* b[0..j] contains a vowel. */
static bool vowel_in_stem(const word *w)
{
	for (int i = 0; i <= w->j; i++)
		if (!cons(w, i))
			return true;
	return false;
}

/* b[i-1..i] is a double consonant. */
static bool double_cons(const word *w, int i)
{
	return i >= 1 && w->b[i] == w->b[i - 1] && cons(w, i);
}

/* b[i-2..i] is consonant-vowel-consonant, the last not w, x or y (the
 * condition for restoring an e: cav(e), lov(e), hop(e), not snow, box, tray). */
static bool cvc(const word *w, int i)
{
	if (i < 2 || !cons(w, i) || cons(w, i - 1) || !cons(w, i - 2))
		return false;
	char c = w->b[i];
	return c != 'w' && c != 'x' && c != 'y';
}

/* The word ends with s; then j is the end of the stem before it. */
static bool ends(word *w, const char *s)
{
	int len = (int)strlen(s);
	if (len > w->k + 1 || memcmp(w->b + w->k - len + 1, s, (size_t)len))
		return false;
	w->j = w->k - len;
	return true;
}

/* Replace b[j+1..k] by s (never longer than what it replaces). */
static void set_to(word *w, const char *s)
{
	int len = (int)strlen(s);
	memcpy(w->b + w->j + 1, s, (size_t)len);
	w->k = w->j + len;
}

/* set_to when the stem's measure is above 0. */
static void replace_m0(word *w, const char *s)
{
	if (measure(w) > 0)
		set_to(w, s);
}

/* Plurals and -ed, -ing. */
static void step1ab(word *w)
{
	if (w->b[w->k] == 's') {
		if (ends(w, "sses"))
			w->k -= 2;
		else if (ends(w, "ies"))
			set_to(w, "i");
		else if (w->b[w->k - 1] != 's')
			w->k--;
	}
	if (ends(w, "eed")) {
		if (measure(w) > 0)
			w->k--;
	} else if ((ends(w, "ed") || ends(w, "ing")) && vowel_in_stem(w)) {
		w->k = w->j;
		if (ends(w, "at"))
			set_to(w, "ate");
		else if (ends(w, "bl"))
			set_to(w, "ble");
		else if (ends(w, "iz"))
			set_to(w, "ize");
		else if (double_cons(w, w->k)) {
			char c = w->b[w->k];
			if (c != 'l' && c != 's' && c != 'z')
				w->k--;
		} else {
			w->j = w->k;
			if (measure(w) == 1 && cvc(w, w->k)) {
				w->b[w->k + 1] = 'e';
				w->k++;
			}
		}
	}
}

/* A terminal y after a vowel in the stem becomes i. */
static void step1c(word *w)
{
	if (ends(w, "y") && vowel_in_stem(w))
		w->b[w->k] = 'i';
}

typedef struct rule {
	const char *from, *to;
} rule;

/* The first rule whose suffix the word has, applied when the stem's measure
 * is above 0 (the longest suffix is listed first). */
static void apply_first(word *w, const rule *r)
{
	for (; r->from; r++)
		if (ends(w, r->from)) {
			replace_m0(w, r->to);
			return;
		}
}

/* Double suffixes to single ones. */
static void step2(word *w)
{
	static const rule rules[] = {
		{ "ational", "ate" }, { "tional", "tion" }, { "enci", "ence" }, { "anci", "ance" },
		{ "izer", "ize" }, { "bli", "ble" }, { "alli", "al" }, { "entli", "ent" },
		{ "eli", "e" }, { "ousli", "ous" }, { "ization", "ize" }, { "ation", "ate" },
		{ "ator", "ate" }, { "alism", "al" }, { "iveness", "ive" }, { "fulness", "ful" },
		{ "ousness", "ous" }, { "aliti", "al" }, { "iviti", "ive" }, { "biliti", "ble" },
		{ "logi", "log" }, { NULL, NULL },
	};
	/* No suffix of the list is a proper suffix of another with a different
	 * outcome except ational/tional, ization/ation and the -li, -iti pairs
	 * whose longer member comes first, so the first match is the longest. */
	if (w->k >= 1)
		apply_first(w, rules);
}

/* -ic-, -full, -ness and the like. */
static void step3(word *w)
{
	static const rule rules[] = {
		{ "icate", "ic" }, { "ative", "" }, { "alize", "al" }, { "iciti", "ic" },
		{ "ical", "ic" }, { "ful", "" }, { "ness", "" }, { NULL, NULL },
	};
	apply_first(w, rules);
}

/* Suffixes removed when the stem's measure is above 1. */
static void step4(word *w)
{
	static const char *const suffixes[] = {
		"al", "ance", "ence", "er", "ic", "able", "ible", "ant", "ement", "ment", "ent",
		"ion", "ou", "ism", "ate", "iti", "ous", "ive", "ize", NULL,
	};
	/* The longest suffix the word has (ement before ment before ent). */
	const char *best = NULL;
	int bj = 0;
	for (size_t i = 0; suffixes[i]; i++)
		if (ends(w, suffixes[i]) && (!best || strlen(suffixes[i]) > strlen(best))) {
			best = suffixes[i];
			bj = w->j;
		}
	if (!best)
		return;
	w->j = bj;
	if (!strcmp(best, "ion") && (bj < 0 || (w->b[bj] != 's' && w->b[bj] != 't')))
		return;
	if (measure(w) > 1)
		w->k = w->j;
}

/* A final e, and a final double l. */
static void step5(word *w)
{
	w->j = w->k;
	if (w->b[w->k] == 'e') {
		w->j = w->k - 1;
		int m = measure(w);
		if (m > 1 || (m == 1 && !cvc(w, w->k - 1)))
			w->k--;
	}
	w->j = w->k;
	if (w->b[w->k] == 'l' && double_cons(w, w->k) && measure(w) > 1)
		w->k--;
}

size_t porter_stem(char *b, size_t len)
{
	if (len <= 2 || len > 64)
		return len;
	for (size_t i = 0; i < len; i++)
		if (b[i] < 'a' || b[i] > 'z')
			return len;
	/* one spare byte: step 1b may add an e after removing -ed or -ing
	 * (never past the word's old end, but set_to writes through b) */
	char buf[66];
	memcpy(buf, b, len);
	word w = { buf, (int)len - 1, 0 };
	step1ab(&w);
	if (w.k > 0) {
		step1c(&w);
		step2(&w);
		step3(&w);
		step4(&w);
		step5(&w);
	}
	size_t n = (size_t)w.k + 1;
	memcpy(b, buf, n);
	return n;
}
