/*
 * <train/features.h> - messages with tokens and features: the value that
 * flows from tokenizers through featurizers to classifiers (issue 6).
 *
 * A feature set holds, for each message (in NLU-data order when made from
 * training data):
 *
 *  - its text, intent and entities (the <train/rasa.h> annotation, with
 *    character offsets as Rasa counts them);
 *  - its tokens, with character offsets into the text (code points, end
 *    exclusive), an optional lemma and part of speech, and an optional
 *    vocabulary id (subword tokenizers);
 *  - one matrix per feature block.
 *
 * A feature block is what one featurizer made: a name (by convention the
 * featurizer's node or class name, "CountVectorsFeaturizer"), a kind
 * (sparse or dense) and a dimension (the size of its named feature space).
 * Every message has a matrix for every block, with n_tokens + 1 rows: one
 * row per token (Rasa's "sequence" features), then one "sentence" row
 * (Rasa's sentence features).  Block flags say which of the two a
 * featurizer fills; rows it does not fill are empty (sparse) or zero
 * (dense).  Sparse matrices are CSR with float32 values; dense matrices
 * are float32, row-major.
 *
 * The set also carries the label vocabulary where it is known (made from
 * training data): the intents, each with its tokens (the intent split by
 * the tokenizer's intent_split_symbol, or the whole name as one token),
 * and the entity types.  Both are sorted bytewise and unique.  A set made
 * for prediction (one message) has neither.
 *
 *                 columns: 0 .. dim-1 of block b
 *   token 0     [ . . 1 . . . 2 . ]
 *   token 1     [ . 1 . . . . . . ]       message m, features[b]:
 *   ...                                    rows = n_tokens + 1
 *   sentence    [ . 1 1 . . . 2 . ]
 *
 * Lifecycle.  A tokenizer builds a set and hands it on as a value:
 *
 *   train_features_from_nlu(nlu, &f)          messages, entities, labels
 *   (or train_features_create(&f) + train_features_add_message())
 *   train_features_set_tokens(f, m, toks, n)  for each message
 *   train_features_set_intent_tokens(f, i, names, n)   optional
 *   train_features_to_value(f, &value, &err)
 *   train_features_free(f)
 *
 * and a featurizer decodes it, adds its block and encodes it again:
 *
 *   train_features_from_value(value, &f, &err)
 *   train_features_add_block(f, "CountVectorsFeaturizer", TRAIN_FEAT_SPARSE,
 *                            dim, TRAIN_FEAT_SEQUENCE | TRAIN_FEAT_SENTENCE, &b)
 *   train_features_set_sparse(f, b, m, indptr, indices, values)  per message
 *   train_features_to_value(f, &value, &err)
 *
 * Consumers read the struct's fields.  Tokens can be set only while the
 * set has no block (rows depend on them).
 *
 * Ownership: the set owns everything it points to; the builder calls copy
 * their arguments.  Pointers read from the struct stay valid until the
 * next call that changes the set (add_message, add_block, set_*) or
 * train_features_free().  Nothing in the struct may be modified directly.
 *
 * Threads: a set is not thread-safe while it is built; a set nobody
 * changes may be read from several threads.  No global state.
 *
 * Errors (every call that returns int): TRAIN_OK, or
 *  - TRAIN_EINVAL    NULL arguments, an index out of range, text that is
 *                    not UTF-8, a token or entity span outside its text,
 *                    tokens set while blocks exist, a block dimension of
 *                    0 or an empty name, a sparse matrix that is not
 *                    canonical (see train_features_set_sparse), a value
 *                    that is not finite;
 *  - TRAIN_EEXIST    a block name used twice;
 *  - TRAIN_ENOTFOUND train_features_find_block: no block of that name;
 *  - TRAIN_ECORRUPT  decoding: bytes that fail any check, another content
 *                    type or format version;
 *  - TRAIN_ENOMEM.
 *
 * Limits: texts, names and token strings of up to 2^32-2 bytes; at most
 * 2^32-2 messages, tokens per message, entities per message, blocks and
 * non-zero entries per sparse matrix.
 */
#ifndef TRAIN_FEATURES_H
#define TRAIN_FEATURES_H

#include <train/common.h>
#include <train/rasa.h>
#include <train/value.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Content type of the serialized value. */
#define TRAIN_FEATURES_TYPE "application/vnd.train.features"
/** Format version written by train_features_to_value (the only one read). */
#define TRAIN_FEATURES_FORMAT 1

typedef enum train_feat_kind {
	TRAIN_FEAT_SPARSE = 1, /**< CSR, float32 values */
	TRAIN_FEAT_DENSE = 2,  /**< float32, row-major, rows x dim */
} train_feat_kind;

/** Block flags: which rows a featurizer fills. */
enum {
	TRAIN_FEAT_SEQUENCE = 1, /**< the token rows */
	TRAIN_FEAT_SENTENCE = 2, /**< the last row */
};

/** A token of a message's text. */
typedef struct train_feat_token {
	const char *text;     /**< the token's text (normally the text it covers) */
	uint32_t start, end;  /**< code points into the message text, end exclusive */
	const char *lemma;    /**< optional */
	const char *pos;      /**< optional: part-of-speech tag */
	int32_t id;           /**< vocabulary id (subword tokenizers), -1 when none */
} train_feat_token;

/** A feature block: the space one featurizer's features live in. */
typedef struct train_feat_block {
	const char *name;     /**< unique within the set */
	train_feat_kind kind;
	uint32_t dim;         /**< columns, >= 1 */
	uint32_t flags;       /**< TRAIN_FEAT_SEQUENCE | TRAIN_FEAT_SENTENCE */
} train_feat_block;

/**
 * One message's features of one block: `rows` = n_tokens + 1 rows.
 * Sparse: row r holds indices[indptr[r] .. indptr[r+1]) (strictly
 * increasing column numbers < dim) with their values (never 0).
 * Dense: values[r * dim + c]; indptr and indices are NULL, nnz 0.
 */
typedef struct train_feat_matrix {
	uint32_t rows;
	uint32_t nnz;             /**< sparse: entries */
	const uint32_t *indptr;   /**< sparse: rows + 1 offsets, indptr[0] = 0 */
	const uint32_t *indices;  /**< sparse: nnz column numbers */
	const float *values;      /**< sparse: nnz values; dense: rows * dim */
} train_feat_matrix;

typedef struct train_feat_message {
	const char *text;         /**< UTF-8 */
	uint32_t text_len;        /**< bytes */
	uint32_t text_chars;      /**< code points */
	const char *intent;       /**< optional (NULL when unlabelled) */
	const char *response_key; /**< optional: retrieval intents ("faq/ask_name") */
	const train_rasa_entity *entities; size_t n_entities;
	const train_feat_token *tokens;    size_t n_tokens;
	const train_feat_matrix *features; /**< one per block of the set */
} train_feat_message;

/** An intent label and its tokens. */
typedef struct train_feat_label {
	const char *name;
	train_rasa_names tokens;  /**< empty unless a tokenizer set them */
} train_feat_label;

typedef struct train_features {
	const train_feat_message *messages; size_t n_messages;
	const train_feat_block *blocks;     size_t n_blocks;
	const train_feat_label *intents;    size_t n_intents;  /**< sorted, unique */
	train_rasa_names entity_tags;                          /**< sorted, unique */
	struct train_features_priv *priv_;                     /**< private */
} train_features;

/* ---- building ------------------------------------------------------------- */

/** An empty set.  @param[out] out  free with train_features_free() */
TRAIN_API int train_features_create(train_features **out);
/**
 * A set with one message per NLU example (text, intent, response_key,
 * entities; no tokens), in order, and the label vocabulary: every intent
 * of the examples and every entity type of their annotations.
 */
TRAIN_API int train_features_from_nlu(const train_rasa_nlu *nlu, train_features **out);
/** NULL is fine. */
TRAIN_API void train_features_free(train_features *f);

/**
 * Append a message (no entities, no tokens; every block's matrix empty).
 * @param[in]  intent  may be NULL
 * @param[out] index   optional: the new message's index
 */
TRAIN_API int train_features_add_message(train_features *f, const char *text, const char *intent,
                                         size_t *index);
/**
 * Set message `msg`'s tokens (copied; replaces earlier ones).  Each needs
 * a text and start <= end <= the message's text_chars.  TRAIN_EINVAL once
 * the set has a block.
 */
TRAIN_API int train_features_set_tokens(train_features *f, size_t msg, const train_feat_token *tokens,
                                        size_t n);
/** Set intent label `label`'s tokens (copied; replaces earlier ones). */
TRAIN_API int train_features_set_intent_tokens(train_features *f, size_t label,
                                               const char *const *tokens, size_t n);
/**
 * Add a block; every message gets an empty (sparse) or zero (dense)
 * matrix of n_tokens + 1 rows.  `flags` is a non-empty combination of
 * TRAIN_FEAT_SEQUENCE and TRAIN_FEAT_SENTENCE.
 * Errors: TRAIN_EINVAL (empty name, dim 0, bad kind or flags), TRAIN_EEXIST.
 */
TRAIN_API int train_features_add_block(train_features *f, const char *name, train_feat_kind kind,
                                       uint32_t dim, uint32_t flags, size_t *index);
/**
 * Set message `msg`'s matrix of sparse block `block` (copied):
 * `indptr` has n_tokens + 2 entries (rows + 1), starting at 0 and never
 * decreasing; row r's column numbers indices[indptr[r] .. indptr[r+1])
 * strictly increase and are < dim; values are finite and non-zero.  So a
 * matrix has one representation, and equal features give equal bytes.
 */
TRAIN_API int train_features_set_sparse(train_features *f, size_t block, size_t msg,
                                        const uint32_t *indptr, const uint32_t *indices,
                                        const float *values);
/** Set message `msg`'s matrix of dense block `block`: (n_tokens + 1) * dim finite floats. */
TRAIN_API int train_features_set_dense(train_features *f, size_t block, size_t msg,
                                       const float *values);

/* ---- reading --------------------------------------------------------------- */

/** The index of the block called `name`.  Errors: TRAIN_EINVAL, TRAIN_ENOTFOUND. */
TRAIN_API int train_features_find_block(const train_features *f, const char *name, size_t *index);
/** The index of intent label `name`.  Errors: TRAIN_EINVAL, TRAIN_ENOTFOUND. */
TRAIN_API int train_features_find_intent(const train_features *f, const char *name, size_t *index);

/* ---- serialization ----------------------------------------------------------- */

/*
 * The bytes: magic "TRFS", u32 format version, then little-endian,
 * length-prefixed fields (u32 counts and string lengths, u32 offsets and
 * column numbers, float32 bits) of the intents (with tokens), the entity
 * types, the blocks and the messages, in order.  Equal sets give equal
 * bytes.  Decoding checks every count, length, offset and column against
 * its bound and the bytes left, UTF-8, sortedness of the labels, and
 * refuses (TRAIN_ECORRUPT) anything else.
 */
TRAIN_API int train_features_to_value(const train_features *f, train_value **out, train_error *err);
/** Decode a value of type TRAIN_FEATURES_TYPE.  @param[out] out  free with train_features_free() */
TRAIN_API int train_features_from_value(const train_value *v, train_features **out, train_error *err);
/** Decode raw bytes (the entry point for fuzzing). */
TRAIN_API int train_features_decode(const void *data, size_t size, train_features **out,
                                    train_error *err);

#ifdef __cplusplus
}
#endif
#endif /* TRAIN_FEATURES_H */
