/*
 * plugins/common/text.h - UTF-8 and the Unicode character classes of
 * Python, for the Rasa components (tokenizers, featurizers).  Private to
 * the first-party plugins; compiled into each that needs it.
 *
 * Rasa's components are Python: they split, test and lower-case text with
 * str methods and the `re` and `regex` modules.  To give the same tokens
 * and features, these helpers answer the same questions from tables
 * generated from Python (unicode_tables.h, gen_unicode.py), with no
 * locale involved.  Code points are uint32_t; strings are UTF-8 that the
 * caller has checked (the features value and the Rasa readers only hold
 * valid UTF-8), so decoding never fails.
 */
#ifndef PLUGINS_TEXT_H
#define PLUGINS_TEXT_H

#include <stddef.h>
#include <stdint.h>

/* Decode the code point at s[*i] (of n bytes) and advance *i.  A bad
 * sequence decodes as its first byte (U+0080..U+00FF), one byte long. */
uint32_t text_next(const char *s, size_t n, size_t *i);
/* Encode `c` into out (at least 4 bytes); returns the byte count. */
size_t text_put(char *out, uint32_t c);
/* Code points in s[0..n). */
size_t text_chars(const char *s, size_t n);

/* Decode a whole string into a malloc'd array of code points (*len of
 * them; also writes byte offsets of each code point into *offs if not NULL,
 * with offs[len] = n).  NULL when out of memory. */
uint32_t *text_decode(const char *s, size_t n, size_t *len, size_t **offs);

/* Character classes. */
int text_is_regex_word(uint32_t c); /* \w of the `regex` module */
int text_is_regex_space(uint32_t c);/* \s of the `regex` module (White_Space) */
int text_is_re_word(uint32_t c);    /* \w of Python's `re`: isalnum() or '_' */
int text_is_space(uint32_t c);      /* str.isspace(); \s of `re` */
int text_is_decimal(uint32_t c);    /* str.isdecimal(); \d of `re` */
int text_is_lower(uint32_t c);      /* str.islower() of one character */
int text_is_upper(uint32_t c);
int text_is_title(uint32_t c);      /* titlecase (Lt) */
int text_is_digit(uint32_t c);      /* str.isdigit() of one character */
/* str.lower() of one character, where that is one character (all but
 * U+0130, which text_lower() expands). */
uint32_t text_tolower(uint32_t c);

/* Python's str.islower(), isupper(), istitle(), isdigit() of a string. */
int text_str_islower(const char *s, size_t n);
int text_str_isupper(const char *s, size_t n);
int text_str_istitle(const char *s, size_t n);
int text_str_isdigit(const char *s, size_t n);

/* str.lower(): a malloc'd, NUL-terminated copy (*out_len bytes; NULL when
 * out of memory). */
char *text_lower(const char *s, size_t n, size_t *out_len);

/* The first `k` code points of s (k >= 0) or the last `-k` (k < 0), as
 * Python's s[:k] / s[k:]: a byte range [*b, *e) of s. */
void text_slice(const char *s, size_t n, long k, size_t *b, size_t *e);

#endif
