/*
 * plugins/gpt2/gpt2_io.c - GPT-2's byte-level BPE tokenizer (the shared
 * one of plugins/common/bpe.c, which follows GPT-2's encoder.py), Hugging
 * Face folders (config.json, model.safetensors, vocab.json, merges.txt)
 * and PEFT adapter folders, read and written (see gpt2.h).
 */
#include "gpt2.h"

#include "../common/hf.h"
#include "../common/text.h"

#include <train/optim.h>

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- BPE: plugins/common/bpe.c ------------------------------------------------------ */

int gpt2_bpe_load(const char *vocab_path, const char *merges_path, gpt2_bpe *b, train_error *err)
{
	return bpe_load(vocab_path, merges_path, 1, 0, b, err);
}

void gpt2_bpe_free(gpt2_bpe *b)
{
	bpe_free(b);
}

int gpt2_bpe_encode(const gpt2_bpe *b, const char *text, size_t len, int32_t *ids, size_t max,
                    size_t *n)
{
	return bpe_encode(b, text, len, ids, max, n);
}

int gpt2_bpe_decode(const gpt2_bpe *b, const int32_t *ids, size_t n, char **out, size_t *len)
{
	return bpe_decode(b, ids, n, out, len);
}

/* ---- config.json ------------------------------------------------------------------- */

static int cfg_int(json_t *j, const char *key, int *dst, int required, const char *file,
                   train_error *err)
{
	json_t *x = json_object_get(j, key);
	if (!x || json_is_null(x)) {
		if (required)
			return train_error_set(err, TRAIN_ECORRUPT, file, 0, 0, "\"%s\" is missing", key);
		return TRAIN_OK;
	}
	if (!json_is_integer(x) || json_integer_value(x) <= 0 || json_integer_value(x) > INT32_MAX)
		return train_error_set(err, TRAIN_ECORRUPT, file, 0, 0, "\"%s\" must be a positive integer",
		                       key);
	*dst = (int)json_integer_value(x);
	return TRAIN_OK;
}

static int read_config(const char *path, gpt2_config *c, train_error *err)
{
	char *text = NULL;
	size_t len;
	json_t *j = NULL;
	int rc = hf_read_file(path, &text, &len, err);
	if (rc)
		return rc;
	json_error_t je;
	if (!(j = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je)) || !json_is_object(j)) {
		rc = train_error_set(err, TRAIN_EPARSE, path, j ? 0 : (unsigned)je.line,
		                     j ? 0 : (unsigned)je.column, "%s", j ? "not a JSON object" : je.text);
		goto out;
	}
	json_t *mt = json_object_get(j, "model_type");
	if (mt && (!json_is_string(mt) || strcmp(json_string_value(mt), "gpt2"))) {
		rc = train_error_set(err, TRAIN_EUNSUPPORTED, path, 0, 0, "model_type is not \"gpt2\"");
		goto out;
	}
	json_t *act = json_object_get(j, "activation_function");
	if (act && (!json_is_string(act) || (strcmp(json_string_value(act), "gelu_new") &&
	                                     strcmp(json_string_value(act), "gelu_pytorch_tanh")))) {
		rc = train_error_set(err, TRAIN_EUNSUPPORTED, path, 0, 0,
		                     "activation_function must be \"gelu_new\" (the tanh form)");
		goto out;
	}
	memset(c, 0, sizeof *c);
	c->n_positions = 1024;
	if ((rc = cfg_int(j, "vocab_size", &c->vocab_size, 1, path, err)) ||
	    (rc = cfg_int(j, "n_embd", &c->n_embd, 1, path, err)) ||
	    (rc = cfg_int(j, "n_layer", &c->n_layer, 1, path, err)) ||
	    (rc = cfg_int(j, "n_head", &c->n_head, 1, path, err)) ||
	    (rc = cfg_int(j, "n_positions", &c->n_positions, 0, path, err)))
		goto out;
	int inner = 4 * c->n_embd;
	if ((rc = cfg_int(j, "n_inner", &inner, 0, path, err)))
		goto out;
	if (inner != 4 * c->n_embd) {
		rc = train_error_set(err, TRAIN_EUNSUPPORTED, path, 0, 0,
		                     "n_inner %d: only 4 * n_embd (%d) is supported", inner, 4 * c->n_embd);
		goto out;
	}
	json_t *sa = json_object_get(j, "scale_attn_weights");
	json_t *sl = json_object_get(j, "scale_attn_by_inverse_layer_idx");
	if ((sa && !json_is_true(sa)) || (sl && !json_is_false(sl))) {
		rc = train_error_set(err, TRAIN_EUNSUPPORTED, path, 0, 0,
		                     "only scale_attn_weights true and scale_attn_by_inverse_layer_idx false "
		                     "are supported");
		goto out;
	}
	json_t *eps = json_object_get(j, "layer_norm_epsilon");
	c->ln_eps = 1e-5f;
	if (eps) {
		if (!json_is_number(eps) || !(json_number_value(eps) >= 0)) {
			rc = train_error_set(err, TRAIN_ECORRUPT, path, 0, 0, "layer_norm_epsilon must be a number >= 0");
			goto out;
		}
		c->ln_eps = (float)json_number_value(eps);
	}
	if ((rc = gpt2_config_check(c, err)) && err)
		snprintf(err->file, sizeof err->file, "%.255s", path);
out:
	free(text);
	json_decref(j);
	return rc;
}

/* ---- tensors -------------------------------------------------------------------------- */

/* Drop the mapped file pages of a tensor once copied: the file's pages and
 * the copy would otherwise both count in the peak resident memory while a
 * model loads (twice the model).  They are read back from the file if
 * touched again. */
static void drop_pages(const train_tensor *t)
{
	long ps = sysconf(_SC_PAGESIZE);
	uintptr_t a = (uintptr_t)t->data, e = a + train_tensor_nbytes(t);
	if (ps <= 0)
		return;
	a = (a + (uintptr_t)ps - 1) / (uintptr_t)ps * (uintptr_t)ps;
	e = e / (uintptr_t)ps * (uintptr_t)ps;
	if (e > a)
		madvise((void *)a, e - a, MADV_DONTNEED);
}

static int shape_ok(const train_tensor *t, int ndim, int64_t d0, int64_t d1)
{
	return t->ndim == ndim && t->shape[0] == d0 && (ndim == 1 || t->shape[1] == d1);
}

int gpt2_hf_load(const char *dir, int with_grads, gpt2_model **out, gpt2_bpe *bpe,
                 train_error *err)
{
	char path[4096], path2[4096];
	train_safetensors *st = NULL;
	gpt2_model *m = NULL;
	gpt2_config c;
	float *tmp = NULL;
	int rc;
	*out = NULL;
	if (bpe)
		memset(bpe, 0, sizeof *bpe);
	struct stat sb;
	if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
		return train_error_set(err, TRAIN_ENOTFOUND, dir, 0, 0,
		                       "not a folder (a Hugging Face GPT-2 folder with config.json, "
		                       "model.safetensors, vocab.json and merges.txt is expected; nothing "
		                       "is downloaded)");
	snprintf(path, sizeof path, "%s/config.json", dir);
	if ((rc = read_config(path, &c, err)))
		return rc;
	if (bpe) {
		snprintf(path, sizeof path, "%s/vocab.json", dir);
		snprintf(path2, sizeof path2, "%s/merges.txt", dir);
		if ((rc = gpt2_bpe_load(path, path2, bpe, err)))
			return rc;
		if (bpe->n > (size_t)c.vocab_size) {
			rc = train_error_set(err, TRAIN_ECORRUPT, path, 0, 0,
			                     "%zu tokens, more than config.json's vocab_size %d", bpe->n, c.vocab_size);
			goto out;
		}
	}
	snprintf(path, sizeof path, "%s/model.safetensors", dir);
	if ((rc = train_safetensors_open(path, &st, err))) {
		if (err && !err->file[0])
			snprintf(err->file, sizeof err->file, "%.255s", path);
		goto out;
	}
	if ((rc = gpt2_model_create(&c, with_grads, &m))) {
		train_error_set(err, rc, path, 0, 0, "cannot allocate the model");
		goto out;
	}
	for (size_t i = 0; i < m->n_tensors; i++) {
		const gpt2_tensor *gt = &m->tensors[i];
		char alt[sizeof gt->name + 16];
		train_tensor t;
		snprintf(alt, sizeof alt, "transformer.%s", gt->name);
		if (train_safetensors_get(st, gt->name, &t) && train_safetensors_get(st, alt, &t)) {
			rc = train_error_set(err, TRAIN_ENOTFOUND, path, 0, 0, "tensor %s is missing", gt->name);
			goto out;
		}
		if (!shape_ok(&t, gt->ndim, gt->shape[0], gt->shape[1])) {
			if (gt->ndim == 2)
				rc = train_error_set(err, TRAIN_EMISMATCH, path, 0, 0,
				                     "tensor %s has shape %s[%lld, %lld], config.json says [%lld, %lld]",
				                     gt->name, t.ndim == 2 ? "" : "of other rank ", (long long)t.shape[0],
				                     (long long)(t.ndim > 1 ? t.shape[1] : 1), (long long)gt->shape[0],
				                     (long long)gt->shape[1]);
			else
				rc = train_error_set(err, TRAIN_EMISMATCH, path, 0, 0,
				                     "tensor %s has %lld values (rank %d), config.json says %lld",
				                     gt->name, (long long)t.shape[0], t.ndim, (long long)gt->shape[0]);
			goto out;
		}
		if ((rc = hf_tensor_f32(&t, m->params + gt->offset, path, gt->name, err)))
			goto out;
		drop_pages(&t);
	}
	/* an untied head is another model */
	train_tensor lm;
	if (train_safetensors_get(st, "lm_head.weight", &lm) == 0) {
		size_t n = (size_t)c.vocab_size * c.n_embd;
		if (!shape_ok(&lm, 2, c.vocab_size, c.n_embd) || !(tmp = malloc(n * sizeof *tmp)) ||
		    hf_tensor_f32(&lm, tmp, path, "lm_head.weight", NULL) ||
		    memcmp(tmp, m->wte, n * sizeof *tmp)) {
			rc = train_error_set(err, TRAIN_EUNSUPPORTED, path, 0, 0,
			                     "lm_head.weight differs from wte.weight: only a head tied to the "
			                     "embeddings is supported");
			goto out;
		}
	}
	rc = TRAIN_OK;
out:
	free(tmp);
	train_safetensors_close(st);
	if (rc) {
		gpt2_model_destroy(m);
		if (bpe)
			gpt2_bpe_free(bpe);
	} else {
		*out = m;
	}
	return rc;
}

static int make_dir(const char *dir, train_error *err)
{
	if (mkdir(dir, 0777) != 0 && errno != EEXIST)
		return train_error_set(err, -errno, dir, 0, 0, "cannot create the folder: %s", strerror(errno));
	return TRAIN_OK;
}

int gpt2_hf_save(const gpt2_model *m, const gpt2_bpe *bpe, const char *dir, train_error *err)
{
	const gpt2_config *c = &m->cfg;
	char path[4096];
	json_t *j = json_object();
	int rc;
	if (!j) {
		rc = train_error_set(err, TRAIN_ENOMEM, dir, 0, 0, "out of memory");
		goto out;
	}
	if ((rc = make_dir(dir, err)))
		goto out;
	int eot = bpe ? bpe->eot : c->vocab_size - 1;
	json_object_set_new(j, "architectures", json_pack("[s]", "GPT2LMHeadModel"));
	json_object_set_new(j, "model_type", json_string("gpt2"));
	json_object_set_new(j, "activation_function", json_string("gelu_new"));
	json_object_set_new(j, "vocab_size", json_integer(c->vocab_size));
	json_object_set_new(j, "n_positions", json_integer(c->n_positions));
	json_object_set_new(j, "n_ctx", json_integer(c->n_positions));
	json_object_set_new(j, "n_embd", json_integer(c->n_embd));
	json_object_set_new(j, "n_layer", json_integer(c->n_layer));
	json_object_set_new(j, "n_head", json_integer(c->n_head));
	json_object_set_new(j, "n_inner", json_null());
	json_object_set_new(j, "layer_norm_epsilon", json_real(c->ln_eps));
	json_object_set_new(j, "initializer_range", json_real(0.02));
	json_object_set_new(j, "resid_pdrop", json_real(0.1));
	json_object_set_new(j, "embd_pdrop", json_real(0.1));
	json_object_set_new(j, "attn_pdrop", json_real(0.1));
	json_object_set_new(j, "scale_attn_weights", json_true());
	json_object_set_new(j, "bos_token_id", json_integer(eot));
	json_object_set_new(j, "eos_token_id", json_integer(eot));
	json_object_set_new(j, "tie_word_embeddings", json_true());
	json_object_set_new(j, "torch_dtype", json_string("float32"));
	if ((rc = hf_write_json(dir, "config.json", j, err)))
		goto out;
	if (bpe && ((rc = hf_write_atomic(dir, "vocab.json", bpe->vocab_raw, bpe->vocab_raw_len, err)) ||
	            (rc = hf_write_atomic(dir, "merges.txt", bpe->merges_raw, bpe->merges_raw_len, err))))
		goto out;
	snprintf(path, sizeof path, "%s/model.safetensors", dir);
	rc = hf_params_write(path, m->tensors, m->n_tensors, m->params, "transformer.", err);
out:
	json_decref(j);
	return rc;
}

/* ---- PEFT adapters ------------------------------------------------------------------ */

static const char *const kind_path[GPT2_NKINDS] = { "attn.c_attn", "attn.c_proj", "mlp.c_fc",
                                                    "mlp.c_proj" };

static void parts_text(unsigned parts, char *buf)
{
	buf[0] = '\0';
	static const char *const nm[3] = { "q", "k", "v" };
	for (int p = 0; p < 3; p++)
		if ((parts >> p) & 1) {
			if (buf[0])
				strcat(buf, ",");
			strcat(buf, nm[p]);
		}
}

int gpt2_adapter_save(const gpt2_model *m, const char *base_name, const char *dir,
                      train_error *err)
{
	const gpt2_lora *lo = m->lora;
	char path[4096], parts[8], rank[16];
	json_t *j = NULL;
	train_named_tensor *nt = NULL;
	char (*names)[112] = NULL;
	int rc;
	if (!lo)
		return train_error_set(err, TRAIN_EINVAL, dir, 0, 0, "the model has no adapter to save");
	if ((rc = make_dir(dir, err)))
		return rc;
	j = json_object();
	nt = calloc(2 * (size_t)lo->n_mods, sizeof *nt);
	names = calloc(2 * (size_t)lo->n_mods, sizeof *names);
	if (!j || !nt || !names) {
		rc = train_error_set(err, TRAIN_ENOMEM, dir, 0, 0, "out of memory");
		goto out;
	}
	/* c_attn of some parts: rank r * parts and alpha * parts, through PEFT's
	 * rank_pattern and alpha_pattern (the same alpha / r for every module) */
	int np = lo->attn_parts ? (lo->attn_parts == GPT2_QKV ? 1 : (lo->attn_parts & 1) +
	         ((lo->attn_parts >> 1) & 1) + ((lo->attn_parts >> 2) & 1)) : 1;
	json_t *targets = json_array(), *rp = json_object(), *ap = json_object();
	int both_proj = (lo->kinds >> GPT2_APROJ & 1) && (lo->kinds >> GPT2_MPROJ & 1);
	for (int k = 0; k < GPT2_NKINDS; k++) {
		if (!((lo->kinds >> k) & 1))
			continue;
		if (both_proj && k == GPT2_MPROJ)
			continue;
		const char *name = k == GPT2_ATTN ? "c_attn" : k == GPT2_FC ? "c_fc"
		                   : both_proj ? "c_proj" : kind_path[k];
		json_array_append_new(targets, json_string(name));
	}
	if (np > 1) {
		json_object_set_new(rp, "c_attn", json_integer(lo->rank * np));
		json_object_set_new(ap, "c_attn", json_real(lo->alpha * (double)np));
	}
	json_object_set_new(j, "peft_type", json_string("LORA"));
	json_object_set_new(j, "task_type", json_string("CAUSAL_LM"));
	json_object_set_new(j, "base_model_name_or_path", json_string(base_name ? base_name : ""));
	json_object_set_new(j, "r", json_integer(lo->rank));
	json_object_set_new(j, "lora_alpha", json_real(lo->alpha));
	json_object_set_new(j, "lora_dropout", json_real(lo->dropout));
	json_object_set_new(j, "target_modules", targets);
	json_object_set_new(j, "rank_pattern", rp);
	json_object_set_new(j, "alpha_pattern", ap);
	json_object_set_new(j, "fan_in_fan_out", json_true());
	json_object_set_new(j, "bias", json_string("none"));
	json_object_set_new(j, "inference_mode", json_true());
	json_object_set_new(j, "init_lora_weights", json_true());
	json_object_set_new(j, "modules_to_save", json_null());
	if ((rc = hf_write_json(dir, "adapter_config.json", j, err)))
		goto out;
	size_t k = 0;
	for (int i = 0; i < lo->n_mods; i++) {
		const gpt2_lora_mod *md = &lo->mods[i];
		for (int ab = 0; ab < 2; ab++, k++) {
			snprintf(names[k], sizeof names[k], "base_model.model.transformer.h.%d.%s.lora_%c.weight",
			         md->layer, kind_path[md->kind], ab ? 'B' : 'A');
			nt[k].name = names[k];
			nt[k].t.dtype = TRAIN_F32;
			nt[k].t.ndim = 2;
			nt[k].t.shape[0] = ab ? md->out : md->r;
			nt[k].t.shape[1] = ab ? md->r : md->in;
			nt[k].t.shape[2] = nt[k].t.shape[3] = 1;
			nt[k].t.data = lo->params + (ab ? md->b_off : md->a_off);
		}
	}
	parts_text(lo->attn_parts ? lo->attn_parts : GPT2_QKV, parts);
	snprintf(rank, sizeof rank, "%d", lo->rank);
	const char *meta[] = { "format", "pt", "libtrain.attn_parts", parts, "libtrain.rank", rank, NULL };
	snprintf(path, sizeof path, "%s/adapter_model.safetensors", dir);
	rc = train_safetensors_write(path, nt, k, meta, err);
out:
	free(nt);
	free(names);
	json_decref(j);
	return rc;
}

int gpt2_adapter_load(gpt2_model *m, const char *dir, train_error *err)
{
	if (m->lora)
		return train_error_set(err, TRAIN_EINVAL, dir, 0, 0, "the model has an adapter already");
	hf_peft p;
	int rc = hf_peft_open(&p, dir, err);
	if (rc)
		goto out;
	/* which projections: from the tensors of block 0 */
	unsigned parts = GPT2_QKV;
	unsigned kinds = hf_peft_kinds(&p, "base_model.model.transformer.h.0.", kind_path, GPT2_NKINDS);
	if (!kinds) {
		rc = train_error_set(err, TRAIN_ECORRUPT, p.path, 0, 0,
		                     "no base_model.model.transformer.h.0.*.lora_A.weight tensor");
		goto out;
	}
	const char *mp = train_safetensors_meta(p.st, "libtrain.attn_parts");
	const char *mr = train_safetensors_meta(p.st, "libtrain.rank");
	if (mp && (kinds & 1)) {
		parts = (strchr(mp, 'q') ? GPT2_Q : 0) | (strchr(mp, 'k') ? GPT2_K : 0) |
		        (strchr(mp, 'v') ? GPT2_V : 0);
		char *end;
		long rr = mr ? strtol(mr, &end, 10) : 0;
		if (!parts || !mr || *end || rr != p.r) {
			rc = train_error_set(err, TRAIN_ECORRUPT, p.path, 0, 0,
			                     "libtrain.attn_parts / libtrain.rank metadata do not fit r = %d", p.r);
			goto out;
		}
	}
	if ((rc = gpt2_lora_add(m, kinds, parts, p.r, (float)p.alpha, (float)p.dropout, 0))) {
		train_error_set(err, rc, p.config_path, 0, 0, "cannot make the adapter (r %d)", p.r);
		goto out;
	}
	gpt2_lora *lo = m->lora;
	for (int i = 0; i < lo->n_mods; i++) {
		const gpt2_lora_mod *md = &lo->mods[i];
		for (int ab = 0; ab < 2; ab++) {
			char name[128];
			snprintf(name, sizeof name, "base_model.model.transformer.h.%d.%s.lora_%c.weight",
			         md->layer, kind_path[md->kind], ab ? 'B' : 'A');
			if ((rc = hf_peft_tensor(&p, name, ab ? md->out : md->r, ab ? md->r : md->in,
			                         lo->params + (ab ? md->b_off : md->a_off), err)))
				goto out;
		}
	}
	if (train_safetensors_count(p.st) != 2 * (size_t)lo->n_mods) {
		rc = train_error_set(err, TRAIN_ECORRUPT, p.path, 0, 0,
		                     "%zu tensors, but the adapted projections of block 0 make %d",
		                     train_safetensors_count(p.st), 2 * lo->n_mods);
		goto out;
	}
	rc = TRAIN_OK;
out:
	if (rc)
		gpt2_lora_drop(m);
	hf_peft_close(&p);
	return rc;
}
