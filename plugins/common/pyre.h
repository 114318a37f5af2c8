/*
 * plugins/common/pyre.h - a small backtracking regular expression matcher
 * with the syntax and leftmost-first semantics of Python's `re`, for the
 * patterns Rasa users write (regex features, lookup tables, token_pattern).
 *
 * POSIX <regex.h> would not do: it matches leftmost-longest, so
 * "(\bnew\b|\bnew york\b)" marks "new york" where Python marks "new", and
 * it lacks \d, lazy quantifiers and lookaround.  This matcher works on
 * code points (text_decode) and takes from Python `re`:
 *
 *   literals and escapes  \t \n \r \f \v \a \0 \xhh \uhhhh \Uhhhhhhhh \.
 *   classes               . [...] [^...] \d \D \w \W \s \S (Unicode, as str)
 *   anchors               ^ $ \A \Z \b \B
 *   groups                (...) (?:...) (?P<name>...) (?=...) (?!...)
 *                         (?<=...) (?<!...) (fixed width), \1..\99
 *   repeats               * + ? {m} {m,} {,n} {m,n}, each also lazy (?)
 *   flags                 (?aimsux) at the start; PYRE_IGNORECASE
 *
 * and refuses the rest (conditionals, (?P=name), \N{...}, verbose
 * comments) with a message.  Case-insensitive matching compares
 * str.lower() of single characters.  A search that takes more than
 * PYRE_MAX_STEPS steps, or nests deeper than PYRE_MAX_DEPTH, stops with
 * PYRE_ELIMIT instead of running for ever.
 */
#ifndef PLUGINS_PYRE_H
#define PLUGINS_PYRE_H

#include <stddef.h>
#include <stdint.h>

#define PYRE_IGNORECASE 1

#define PYRE_MAX_STEPS 10000000L
#define PYRE_MAX_DEPTH 4000

#define PYRE_ENOMEM (-1)
#define PYRE_ESYNTAX (-2)
#define PYRE_ELIMIT (-3)

typedef struct pyre pyre;

/*
 * Compile a UTF-8 pattern.  Returns 0, PYRE_ENOMEM, or PYRE_ESYNTAX with
 * a message in err[errsize] ("... at position N").
 */
int pyre_compile(const char *pattern, int flags, pyre **out, char *err, size_t errsize);
void pyre_free(pyre *re);
/* Capturing groups (not counting the whole match). */
size_t pyre_groups(const pyre *re);
/*
 * The leftmost match at or after text[from] (code points text[0..n)).
 * `advance`: a match starting at `from` must not be empty (what Python's
 * findall and finditer ask after an empty match, so that they move on).
 * Returns 1 with the match in [*ms, *me) and, when `g1` is given and the
 * pattern has a group 1 that took part, group 1 in [g1[0], g1[1]) (else
 * g1[0] = g1[1] = (size_t)-1); 0 when nothing matches; PYRE_ELIMIT or
 * PYRE_ENOMEM.
 *
 * All matches as finditer gives them:
 *   for (size_t pos = 0, adv = 0; pos <= n && pyre_search(re, t, n, pos, adv, &s, &e, NULL) == 1;
 *        pos = e, adv = e == s) ...
 */
int pyre_search(const pyre *re, const uint32_t *text, size_t n, size_t from, int advance, size_t *ms,
                size_t *me, size_t *g1);

#endif
