/*
 * plugins/common/bpe.h - byte-level BPE (Sennrich et al., 2016; GPT-2's
 * byte-level form, Radford et al., 2019): learn merges from a text, split
 * text into tokens and join tokens back into bytes.  Shared by GPT2LM
 * (plugins/gpt2, Hugging Face's vocab.json + merges.txt) and MambaLM's
 * `tokenizer: bpe` (plugins/mamba, issue 7).  Private to the first-party
 * plugins; compiled into each that needs it.
 *
 * Text is split into pieces by GPT-2's pattern
 *   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 * (matched by hand, bpe_next_piece), so that no token crosses a word
 * boundary; a byte that is not valid UTF-8 counts as the character
 * U+0080..U+00FF of its value (text_next), so the pieces cover every byte.
 * Each piece starts as its bytes, written as GPT-2's printable characters
 * (bytes_to_unicode), and merges apply lowest rank first, every
 * occurrence of that pair left to right; the result is looked up in the
 * vocabulary.  The special token (GPT-2's "<|endoftext|>", when the
 * vocabulary has it) stands for its text wherever that occurs.  Decoding
 * maps the characters back to bytes, so decode(encode(s)) == s for every
 * byte string s.
 *
 * Trained vocabularies (bpe_train): ids 0..255 are the bytes 0..255, then
 * one token per merge in merge order, then the special token last.
 *
 * Lifecycle: a zeroed bpe_tok is empty; bpe_load or bpe_train fills it;
 * bpe_free releases it (and accepts a half-built or zeroed one).
 * Threads: a filled bpe_tok is read-only; encode and decode may run on several
 * threads at once.  Errors: TRAIN_OK or a negative TRAIN_E* code; readers
 * fill a train_error (may be NULL) with file:line and what.
 */
#ifndef PLUGINS_BPE_H
#define PLUGINS_BPE_H

#include <stddef.h>
#include <stdint.h>

#include <train/common.h>

#include "strmap.h"

#define BPE_EOT_TEXT "<|endoftext|>"

/* One merge as symbols: left, right -> result (symbols: see bpe.sym). */
typedef struct bpe_merge {
	int32_t a, b, r;
} bpe_merge;

typedef struct bpe_tok {
	char **tok;               /* id -> token (byte-level characters, UTF-8) */
	size_t n;                 /* ids (some may be NULL in a loaded vocab) */
	strmap vocab;             /* token -> id */
	char **merges;            /* rank -> "a b" (byte-level characters) */
	size_t n_merges;
	int32_t eot;              /* the special token, -1: none */
	uint16_t byte_char[256];  /* byte -> code point */
	int16_t char_byte[512];   /* code point -> byte (-1: none) */
	char *vocab_raw, *merges_raw; /* vocab.json and merges.txt as read or made */
	size_t vocab_raw_len, merges_raw_len;
	/* the merges as symbols: a symbol is a string that merges produce or
	 * take; symbols [0, n) are the vocabulary's ids, the others strings
	 * outside the vocabulary (written out byte by byte when they end a
	 * piece) */
	strmap sym;               /* string (byte-level characters) -> symbol */
	char **sym_str;           /* symbol -> string, n_sym of them */
	size_t n_sym;
	int32_t byte_sym[256];    /* byte -> symbol (its one-character token) */
	bpe_merge *mrg;           /* rank -> merge */
	struct bpe_pairs *pairs;  /* (a, b) -> rank */
} bpe_tok;

/* GPT-2's bytes_to_unicode into b->byte_char / b->char_byte. */
void bpe_byte_map(bpe_tok *b);

/* The length in code points of GPT-2's next piece at cp[i] (i < n). */
size_t bpe_next_piece(const uint32_t *cp, size_t n, size_t i);

/*
 * Read vocab.json ({"token": id, ...}) and merges.txt (an optional
 * "#version" line, then "a b" per line, rank by line).  Every byte must
 * have its one-character token.  eot_required: the vocabulary must hold
 * BPE_EOT_TEXT.  strict (our own files, bpe_save): also every merge's
 * parts and result are tokens, and the merged tokens are exactly ids
 * 256 + rank, so a cut or edited file is refused at its line.  Errors:
 * TRAIN_ECORRUPT / TRAIN_EPARSE naming file:line, -errno, TRAIN_ENOMEM.
 */
int bpe_load(const char *vocab_path, const char *merges_path, int eot_required, int strict, bpe_tok *b,
             train_error *err);
/* The same from texts in memory (names for the messages). */
int bpe_load_mem(const char *vocab, size_t vocab_len, const char *vocab_name, const char *merges,
                 size_t merges_len, const char *merges_name, int eot_required, int strict, bpe_tok *b,
                 train_error *err);
void bpe_free(bpe_tok *b);

/*
 * Learn merges from text[0..len) (any bytes) until the vocabulary holds
 * vocab_size tokens (256 bytes + merges + the special token
 * BPE_EOT_TEXT), or no pair of symbols occurs min_count times.  Each step
 * merges the pair that occurs most often in the text (over the pieces,
 * each counted with its frequency); ties go to the pair of lowest (left
 * id, right id).  Word types are counted once and pair counts updated
 * incrementally from the words that hold the merged pair, with a lazy
 * max-heap of pair counts.  Errors: TRAIN_EINVAL (vocab_size < 257),
 * TRAIN_ENOMEM.
 */
int bpe_train(const char *text, size_t len, size_t vocab_size, int64_t min_count, bpe_tok *b);

/* Write vocab.json and merges.txt into dir, each by temp name + rename. */
int bpe_save(const bpe_tok *b, const char *dir, train_error *err);

/* Token ids of text[0..len): *n gets the count, at most max written
 * (ids may be NULL with max 0 to count).  TRAIN_ENOMEM. */
int bpe_encode(const bpe_tok *b, const char *text, size_t len, int32_t *ids, size_t max, size_t *n);
/* Bytes of ids (malloc'd, NUL-terminated; *len bytes); ids out of range
 * are skipped. */
int bpe_decode(const bpe_tok *b, const int32_t *ids, size_t n, char **out, size_t *len);
/* The bytes of token id into out (strlen(b->tok[id]) bytes of room:
 * cap bytes suffice); returns their count (0: no such id). */
size_t bpe_token_bytes(const bpe_tok *b, int32_t id, char *out, size_t cap);

#endif
