/*
 * plugins/common/text.c - UTF-8 and Python's Unicode character classes
 * (see text.h).
 */
#include "text.h"

#include <stdlib.h>
#include <string.h>

#include "unicode_tables.h"

uint32_t text_next(const char *str, size_t n, size_t *i)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t p = *i;
	uint32_t c = s[p];
	size_t k = 0;
	if (c < 0x80) {
		*i = p + 1;
		return c;
	}
	if (c >= 0xc2 && c <= 0xdf)
		k = 1, c &= 0x1f;
	else if ((c & 0xf0) == 0xe0)
		k = 2, c &= 0x0f;
	else if (c >= 0xf0 && c <= 0xf4)
		k = 3, c &= 0x07;
	if (!k || n - p - 1 < k) {
		*i = p + 1;
		return s[p];
	}
	for (size_t j = 1; j <= k; j++) {
		if ((s[p + j] & 0xc0) != 0x80) {
			*i = p + 1;
			return s[p];
		}
		c = (c << 6) | (s[p + j] & 0x3f);
	}
	/* Overlong forms (an overlong NUL among them), surrogates and code
	 * points past U+10FFFF are not UTF-8: the lead byte is a stray one. */
	if ((k == 2 && (c < 0x800 || (c >= 0xd800 && c <= 0xdfff))) ||
	    (k == 3 && (c < 0x10000 || c > 0x10ffff))) {
		*i = p + 1;
		return s[p];
	}
	*i = p + k + 1;
	return c;
}

size_t text_put(char *out, uint32_t c)
{
	unsigned char *o = (unsigned char *)out;
	if (c < 0x80) {
		o[0] = (unsigned char)c;
		return 1;
	}
	if (c < 0x800) {
		o[0] = (unsigned char)(0xc0 | (c >> 6));
		o[1] = (unsigned char)(0x80 | (c & 0x3f));
		return 2;
	}
	if (c < 0x10000) {
		o[0] = (unsigned char)(0xe0 | (c >> 12));
		o[1] = (unsigned char)(0x80 | ((c >> 6) & 0x3f));
		o[2] = (unsigned char)(0x80 | (c & 0x3f));
		return 3;
	}
	o[0] = (unsigned char)(0xf0 | (c >> 18));
	o[1] = (unsigned char)(0x80 | ((c >> 12) & 0x3f));
	o[2] = (unsigned char)(0x80 | ((c >> 6) & 0x3f));
	o[3] = (unsigned char)(0x80 | (c & 0x3f));
	return 4;
}

size_t text_chars(const char *s, size_t n)
{
	size_t i = 0, k = 0;
	while (i < n) {
		text_next(s, n, &i);
		k++;
	}
	return k;
}

uint32_t *text_decode(const char *s, size_t n, size_t *len, size_t **offs)
{
	uint32_t *cp = malloc((n + 1) * sizeof *cp);
	size_t *of = offs ? malloc((n + 1) * sizeof *of) : NULL;
	if (!cp || (offs && !of)) {
		free(cp);
		free(of);
		return NULL;
	}
	size_t i = 0, k = 0;
	while (i < n) {
		if (of)
			of[k] = i;
		cp[k++] = text_next(s, n, &i);
	}
	if (of) {
		of[k] = n;
		*offs = of;
	}
	*len = k;
	return cp;
}

static int in_ranges(const uint32_t (*r)[2], size_t n, uint32_t c)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (c < r[mid][0])
			hi = mid;
		else if (c > r[mid][1])
			lo = mid + 1;
		else
			return 1;
	}
	return 0;
}

#define IN(table, c) in_ranges(table, sizeof table / sizeof table[0], c)

int text_is_regex_word(uint32_t c)
{
	if (c < 0x80)
		return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
	return IN(uni_regex_word, c);
}
int text_is_re_word(uint32_t c)
{
	if (c < 0x80)
		return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
	return IN(uni_re_word, c);
}
int text_is_space(uint32_t c) { return IN(uni_space, c); }
int text_is_regex_space(uint32_t c) { return !(c >= 0x1c && c <= 0x1f) && IN(uni_space, c); }
int text_is_decimal(uint32_t c) { return IN(uni_decimal, c); }
int text_is_lower(uint32_t c) { return IN(uni_lower, c); }
int text_is_upper(uint32_t c) { return IN(uni_upper, c); }
int text_is_title(uint32_t c) { return IN(uni_title, c); }
int text_is_digit(uint32_t c) { return IN(uni_digit, c); }

uint32_t text_tolower(uint32_t c)
{
	if (c < 0x80)
		return c >= 'A' && c <= 'Z' ? c + 32 : c;
	size_t lo = 0, hi = sizeof uni_tolower / sizeof uni_tolower[0];
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (c < uni_tolower[mid][0])
			hi = mid;
		else if (c > uni_tolower[mid][0])
			lo = mid + 1;
		else
			return uni_tolower[mid][1];
	}
	return c;
}

/* Python's unicodeobject.c: islower/isupper look at cased characters only. */
int text_str_islower(const char *s, size_t n)
{
	int cased = 0;
	for (size_t i = 0; i < n;) {
		uint32_t c = text_next(s, n, &i);
		if (text_is_upper(c) || text_is_title(c))
			return 0;
		if (text_is_lower(c))
			cased = 1;
	}
	return cased;
}

int text_str_isupper(const char *s, size_t n)
{
	int cased = 0;
	for (size_t i = 0; i < n;) {
		uint32_t c = text_next(s, n, &i);
		if (text_is_lower(c) || text_is_title(c))
			return 0;
		if (text_is_upper(c))
			cased = 1;
	}
	return cased;
}

/* Upper- and titlecase characters only after uncased ones, lowercase only after cased ones. */
int text_str_istitle(const char *s, size_t n)
{
	int cased = 0, prev_cased = 0;
	for (size_t i = 0; i < n;) {
		uint32_t c = text_next(s, n, &i);
		if (text_is_upper(c) || text_is_title(c)) {
			if (prev_cased)
				return 0;
			prev_cased = cased = 1;
		} else if (text_is_lower(c)) {
			if (!prev_cased)
				return 0;
			prev_cased = cased = 1;
		} else {
			prev_cased = 0;
		}
	}
	return cased;
}

int text_str_isdigit(const char *s, size_t n)
{
	if (!n)
		return 0;
	for (size_t i = 0; i < n;)
		if (!text_is_digit(text_next(s, n, &i)))
			return 0;
	return 1;
}

char *text_lower(const char *s, size_t n, size_t *out_len)
{
	/* Valid text grows by half at most (U+0130, 2 bytes, becomes "i" + U+0307,
	 * 3 bytes); a stray byte of bad UTF-8 decodes as U+0080..U+00FF, 2 bytes. */
	char *out = malloc(2 * n + 1);
	if (!out)
		return NULL;
	size_t o = 0;
	for (size_t i = 0; i < n;) {
		uint32_t c = text_next(s, n, &i);
		if (c == 0x130) {
			out[o++] = 'i';
			o += text_put(out + o, 0x307);
		} else {
			o += text_put(out + o, text_tolower(c));
		}
	}
	out[o] = '\0';
	if (out_len)
		*out_len = o;
	return out;
}

void text_slice(const char *s, size_t n, long k, size_t *b, size_t *e)
{
	if (k >= 0) {
		size_t i = 0;
		for (long j = 0; j < k && i < n; j++)
			text_next(s, n, &i);
		*b = 0;
		*e = i;
		return;
	}
	size_t chars = text_chars(s, n), skip = (size_t)-k >= chars ? 0 : chars - (size_t)-k;
	size_t i = 0;
	for (size_t j = 0; j < skip; j++)
		text_next(s, n, &i);
	*b = i;
	*e = n;
}
