/*
 * serve.c - the HTTP side of `train serve` (libmicrohttpd): routing,
 * bearer tokens with two roles, the request body cap, the audit log, and
 * the JSON answers.  Jobs themselves are jobs.c's.
 *
 * Every /api/ request needs `Authorization: Bearer TOKEN`; the tokens are
 * made on first start into STATE/tokens.json (mode 0600; a file others can
 * read is refused).  `admin` may create, start and cancel jobs, `viewer`
 * only reads.  Every request that may change something (POST) is appended
 * to STATE/audit.jsonl, accepted or not: time, token id, method, path, job
 * id, HTTP status, result.  The page at / carries no data: it asks for a
 * token and calls the API like any client.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <train/hardware.h>

#include "serve.h"
#include "../cli/cli.h"

#define MAX_TOKENS 16

typedef struct token {
	char id[64];
	char role[16];
	char secret[80];
} token;

typedef struct server {
	const serve_options *opt;
	serve_jobs *jobs;
	token tokens[MAX_TOKENS];
	size_t n_tokens;
	int audit_fd;
	pthread_mutex_t audit_mu;
} server;

typedef struct request {
	char *body;
	size_t len;
	int too_big;
	const token *tok;
} request;

/* ---- tokens ---------------------------------------------------------------- */

static int random_hex(char *out, size_t bytes)
{
	unsigned char b[64];
	if (bytes > sizeof b)
		return -1;
	size_t got = 0;
	while (got < bytes) {
		ssize_t n = getrandom(b + got, bytes - got, 0);
		if (n < 0 && errno != EINTR)
			return -1;
		if (n > 0)
			got += (size_t)n;
	}
	for (size_t i = 0; i < bytes; i++)
		sprintf(out + 2 * i, "%02x", b[i]);
	return 0;
}

static int load_tokens(server *s, char *why, size_t why_len)
{
	char path[PATH_MAX], tmp[PATH_MAX];
	snprintf(path, sizeof path, "%s/tokens.json", s->opt->state_dir);
	struct stat st;
	if (stat(path, &st) != 0) {
		/* first start: one admin and one viewer token */
		char a[80], v[80];
		if (random_hex(a, 32) || random_hex(v, 32)) {
			snprintf(why, why_len, "cannot draw random tokens: %s", strerror(errno));
			return -1;
		}
		json_t *o = json_pack("{s:[{s:s, s:s, s:s}, {s:s, s:s, s:s}]}", "tokens", "id", "admin-1",
		                      "role", "admin", "token", a, "id", "viewer-1", "role", "viewer",
		                      "token", v);
		snprintf(tmp, sizeof tmp, "%s/.tokens.json.tmp", s->opt->state_dir);
		unlink(tmp);
		int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		char *text = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		json_decref(o);
		int ok = fd >= 0 && text && write(fd, text, strlen(text)) == (ssize_t)strlen(text) &&
		         write(fd, "\n", 1) == 1 && fsync(fd) == 0;
		free(text);
		if (fd >= 0)
			close(fd);
		if (!ok || rename(tmp, path) != 0) {
			snprintf(why, why_len, "%s: cannot write: %s", path, strerror(errno));
			unlink(tmp);
			return -1;
		}
		fprintf(stderr, "train serve: made the tokens (admin-1, viewer-1) in %s\n", path);
		if (stat(path, &st) != 0) {
			snprintf(why, why_len, "%s: %s", path, strerror(errno));
			return -1;
		}
	}
	if (st.st_mode & 077) {
		snprintf(why, why_len, "%s: readable by others (mode %03o): chmod 600 it", path,
		         (unsigned)(st.st_mode & 0777));
		return -1;
	}
	json_error_t jerr;
	json_t *o = json_load_file(path, 0, &jerr);
	if (!o) {
		snprintf(why, why_len, "%s:%d:%d: %s", path, jerr.line, jerr.column, jerr.text);
		return -1;
	}
	json_t *arr = json_object_get(o, "tokens"), *t;
	size_t i;
	if (!json_is_array(arr)) {
		snprintf(why, why_len, "%s: no \"tokens\" list", path);
		json_decref(o);
		return -1;
	}
	json_array_foreach(arr, i, t) {
		const char *id = json_string_value(json_object_get(t, "id"));
		const char *role = json_string_value(json_object_get(t, "role"));
		const char *sec = json_string_value(json_object_get(t, "token"));
		if (!id || !role || !sec || (strcmp(role, "admin") && strcmp(role, "viewer")) ||
		    strlen(sec) < 16 || strlen(sec) >= sizeof s->tokens[0].secret ||
		    strlen(id) >= sizeof s->tokens[0].id || s->n_tokens == MAX_TOKENS) {
			snprintf(why, why_len, "%s: token %zu: needs \"id\", \"role\" (admin or viewer) "
			         "and \"token\" (16 to 79 characters); at most %d tokens", path, i + 1,
			         MAX_TOKENS);
			json_decref(o);
			return -1;
		}
		token *k = &s->tokens[s->n_tokens++];
		snprintf(k->id, sizeof k->id, "%s", id);
		snprintf(k->role, sizeof k->role, "%s", role);
		snprintf(k->secret, sizeof k->secret, "%s", sec);
	}
	json_decref(o);
	return 0;
}

/* Compare in time independent of where they differ. */
static int same_secret(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	unsigned char d = la != lb;
	for (size_t i = 0; i < la; i++)
		d |= (unsigned char)(a[i] ^ b[i % (lb ? lb : 1)]);
	return d == 0;
}

static const token *authenticate(const server *s, struct MHD_Connection *c)
{
	const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
	if (!h || strncasecmp(h, "Bearer ", 7) != 0)
		return NULL;
	h += 7;
	const token *found = NULL;
	for (size_t i = 0; i < s->n_tokens; i++)
		if (same_secret(h, s->tokens[i].secret))
			found = &s->tokens[i];
	return found;
}

/* ---- answers --------------------------------------------------------------- */

static enum MHD_Result answer_text(struct MHD_Connection *c, unsigned status, char *text,
                                   const char *type)
{
	struct MHD_Response *r =
		MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
	if (!r) {
		free(text);
		return MHD_NO;
	}
	MHD_add_response_header(r, "Content-Type", type);
	MHD_add_response_header(r, "Cache-Control", "no-store");
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	if (status == 401)
		MHD_add_response_header(r, "WWW-Authenticate", "Bearer realm=\"train\"");
	enum MHD_Result ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result answer_json(struct MHD_Connection *c, unsigned status, json_t *o)
{
	char *text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
	json_decref(o);
	if (!text)
		return MHD_NO;
	size_t n = strlen(text);
	char *t2 = realloc(text, n + 2);
	if (t2) {
		t2[n] = '\n';
		t2[n + 1] = '\0';
		text = t2;
	}
	return answer_text(c, status, text, "application/json");
}

static json_t *error_json(const char *msg, json_t *errors)
{
	json_t *o = json_pack("{s:s}", "error", msg);
	if (errors)
		json_object_set_new(o, "errors", errors);
	return o;
}

/* ---- the audit log --------------------------------------------------------- */

static void audit(server *s, const token *t, const char *method, const char *url,
                  const char *job, unsigned status, const char *result)
{
	char when[40];
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	struct tm tm;
	gmtime_r(&ts.tv_sec, &tm);
	size_t n = strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(when + n, sizeof when - n, ".%03ldZ", ts.tv_nsec / 1000000L);
	json_t *o = json_pack("{s:s, s:s?, s:s?, s:s, s:s, s:s?, s:i, s:s}", "time", when, "token_id",
	                      t ? t->id : NULL, "role", t ? t->role : NULL, "method", method, "path",
	                      url, "job", job, "status", (int)status, "result", result);
	char *line = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	json_decref(o);
	if (line) {
		pthread_mutex_lock(&s->audit_mu);
		size_t l = strlen(line);
		line[l] = '\n';
		/* one write of an O_APPEND file: lines do not interleave */
		if (write(s->audit_fd, line, l + 1) != (ssize_t)(l + 1))
			fprintf(stderr, "train serve: cannot write the audit log: %s\n", strerror(errno));
		pthread_mutex_unlock(&s->audit_mu);
		free(line);
	}
}

/* ---- routing --------------------------------------------------------------- */

#define API "/api/training/"

/* An answer from jobs.c: the JSON or the failure. */
static enum MHD_Result answer(server *s, struct MHD_Connection *c, request *rq, const char *method,
                              const char *url, const char *job, json_t *o, serve_fail *f,
                              unsigned ok_status)
{
	int post = !strcmp(method, "POST");
	if (o) {
		if (post)
			audit(s, rq->tok, method, url, job ? job : json_string_value(json_object_get(o, "id")),
			      ok_status, "ok");
		return answer_json(c, ok_status, o);
	}
	if (post)
		audit(s, rq->tok, method, url, job, (unsigned)f->status, f->msg);
	return answer_json(c, (unsigned)f->status, error_json(f->msg, f->errors));
}

static enum MHD_Result refuse(server *s, struct MHD_Connection *c, request *rq, const char *method,
                              const char *url, unsigned status, const char *fmt, ...)
	__attribute__((format(printf, 7, 8)));
static enum MHD_Result refuse(server *s, struct MHD_Connection *c, request *rq, const char *method,
                              const char *url, unsigned status, const char *fmt, ...)
{
	serve_fail f = { 0 };
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(f.msg, sizeof f.msg, fmt, ap);
	va_end(ap);
	f.status = (int)status;
	return answer(s, c, rq, method, url, NULL, NULL, &f, 0);
}

static enum MHD_Result route(server *s, struct MHD_Connection *c, request *rq, const char *method,
                             const char *url)
{
	serve_fail f = { 0 };
	int get = !strcmp(method, "GET"), post = !strcmp(method, "POST");
	const char *rest = url + strlen(API);

	if (!strcmp(rest, "hardware")) {
		if (!get)
			return refuse(s, c, rq, method, url, 405, "%s takes GET", url);
		train_hardware hw;
		train_hardware_detect(&hw, s->opt->state_dir);
		return answer_json(c, 200, cli_hardware_json(&hw, s->opt->state_dir));
	}
	if (!strcmp(rest, "models/trainable")) {
		if (!get)
			return refuse(s, c, rq, method, url, 405, "%s takes GET", url);
		return answer_json(c, 200, serve_jobs_trainable(s->jobs));
	}
	if (!strcmp(rest, "compatibility/check")) {
		/* train check's verdict (compat.c); audited like every POST */
		if (!post)
			return refuse(s, c, rq, method, url, 405, "%s takes POST", url);
		json_error_t jerr;
		json_t *body = rq->len ? json_loadb(rq->body, rq->len, JSON_REJECT_DUPLICATES, &jerr) : NULL;
		if (!body && rq->len)
			return refuse(s, c, rq, method, url, 400, "malformed JSON at line %d, column %d: %s",
			              jerr.line, jerr.column, jerr.text);
		json_t *o = serve_compat_check(s->opt, body, &f);
		json_decref(body);
		return answer(s, c, rq, method, url, NULL, o, &f, 200);
	}
	if (!strcmp(rest, "jobs")) {
		if (!get)
			return refuse(s, c, rq, method, url, 405, "%s takes GET; create a job with POST "
			              API "jobs/basic or " API "jobs/advanced", url);
		const char *st = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "status");
		json_t *o = serve_jobs_list(s->jobs, st, &f);
		return answer(s, c, rq, method, url, NULL, o, &f, 200);
	}
	if (!strcmp(rest, "jobs/basic") || !strcmp(rest, "jobs/advanced")) {
		if (!post)
			return refuse(s, c, rq, method, url, 405, "%s takes POST", url);
		if (strcmp(rq->tok->role, "admin"))
			return refuse(s, c, rq, method, url, 403, "token %s is a %s: creating a job needs "
			              "an admin token", rq->tok->id, rq->tok->role);
		json_error_t jerr;
		json_t *body = rq->len ? json_loadb(rq->body, rq->len, JSON_REJECT_DUPLICATES, &jerr) : NULL;
		if (!body)
			return rq->len ? refuse(s, c, rq, method, url, 400,
			                        "malformed JSON at line %d, column %d: %s", jerr.line,
			                        jerr.column, jerr.text)
			               : refuse(s, c, rq, method, url, 400, "the body must be a JSON object");
		json_t *o = serve_jobs_create(s->jobs, rest + 5, body, &f);
		json_decref(body);
		return answer(s, c, rq, method, url, NULL, o, &f, 201);
	}
	if (!strncmp(rest, "jobs/", 5)) {
		char id[64];
		const char *p = rest + 5, *slash = strchr(p, '/');
		size_t n = slash ? (size_t)(slash - p) : strlen(p);
		snprintf(id, sizeof id, "%.*s", (int)(n < sizeof id - 1 ? n : sizeof id - 1), p);
		const char *verb = slash ? slash + 1 : "";
		if (!serve_job_id_ok(id))
			return refuse(s, c, rq, method, url, 400, "'%.64s' is not a job id (job- and digits)",
			              id);
		if (!*verb) {
			if (!get)
				return refuse(s, c, rq, method, url, 405, "%s takes GET", url);
			return answer(s, c, rq, method, url, id, serve_jobs_get(s->jobs, id, &f), &f, 200);
		}
		if (!strcmp(verb, "curve")) {
			if (!get)
				return refuse(s, c, rq, method, url, 405, "%s takes GET", url);
			return answer(s, c, rq, method, url, id, serve_jobs_curve(s->jobs, id, &f), &f, 200);
		}
		if (!strcmp(verb, "start") || !strcmp(verb, "cancel")) {
			if (!post)
				return refuse(s, c, rq, method, url, 405, "%s takes POST", url);
			if (strcmp(rq->tok->role, "admin")) {
				serve_fail ff = { 403, "", NULL };
				snprintf(ff.msg, sizeof ff.msg, "token %s is a %s: %s needs an admin token",
				         rq->tok->id, rq->tok->role, verb);
				return answer(s, c, rq, method, url, id, NULL, &ff, 0);
			}
			json_t *o = !strcmp(verb, "start") ? serve_jobs_start_job(s->jobs, id, &f)
			                                   : serve_jobs_cancel(s->jobs, id, &f);
			return answer(s, c, rq, method, url, id, o, &f, 200);
		}
	}
	return refuse(s, c, rq, method, url, 404, "no such endpoint: %s %s", method, url);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
	(void)version;
	server *s = cls;
	request *rq = *con_cls;
	if (!rq) {
		/* the first call: headers only */
		if (!(rq = calloc(1, sizeof *rq)))
			return MHD_NO;
		*con_cls = rq;
		if (strncmp(url, "/api/", 5) != 0)
			return MHD_YES;
		rq->tok = authenticate(s, c);
		if (!rq->tok)
			return refuse(s, c, rq, method, url, 401, "%s",
			              MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization")
			                      ? "the bearer token is not known"
			                      : "a bearer token is needed (Authorization: Bearer TOKEN)");
		const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
		if (cl && strtoull(cl, NULL, 10) > s->opt->max_body)
			return refuse(s, c, rq, method, url, 413, "the body is larger than %zu bytes",
			              s->opt->max_body);
		return MHD_YES;
	}
	if (*upload_size) {
		if (rq->len + *upload_size > s->opt->max_body) {
			rq->too_big = 1;
		} else if (!rq->too_big) {
			char *b = realloc(rq->body, rq->len + *upload_size + 1);
			if (!b)
				return MHD_NO;
			memcpy(b + rq->len, upload, *upload_size);
			rq->body = b;
			rq->len += *upload_size;
		}
		*upload_size = 0;
		return MHD_YES;
	}
	if (!strcmp(url, "/") || !strcmp(url, "/index.html")) {
		if (strcmp(method, "GET") && strcmp(method, "HEAD"))
			return answer_json(c, 405, error_json("/ takes GET", NULL));
		char *page = strdup(serve_page_html);
		return page ? answer_text(c, 200, page, "text/html; charset=utf-8") : MHD_NO;
	}
	if (strncmp(url, "/api/", 5) != 0)
		return answer_json(c, 404, error_json("not found; the API is under " API, NULL));
	if (rq->too_big)
		return refuse(s, c, rq, method, url, 413, "the body is larger than %zu bytes",
		              s->opt->max_body);
	if (strncmp(url, API, strlen(API)) != 0)
		return refuse(s, c, rq, method, url, 404, "no such endpoint: %s %s", method, url);
	return route(s, c, rq, method, url);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
	(void)cls;
	(void)c;
	(void)toe;
	request *rq = *con_cls;
	if (rq) {
		free(rq->body);
		free(rq);
	}
	*con_cls = NULL;
}

/* ---- the server ------------------------------------------------------------ */

static int parse_listen(const char *s, struct sockaddr_in *sa)
{
	char host[64];
	const char *colon = strrchr(s, ':');
	if (!colon || (size_t)(colon - s) >= sizeof host)
		return -1;
	snprintf(host, sizeof host, "%.*s", (int)(colon - s), s);
	char *end;
	long port = strtol(colon + 1, &end, 10);
	if (*end || port < 0 || port > 65535)
		return -1;
	memset(sa, 0, sizeof *sa);
	sa->sin_family = AF_INET;
	sa->sin_port = htons((uint16_t)port);
	if (!strcmp(host, "localhost"))
		snprintf(host, sizeof host, "127.0.0.1");
	return inet_pton(AF_INET, host, &sa->sin_addr) == 1 ? 0 : -1;
}

int serve_run(const serve_options *opt)
{
	server S = { 0 }, *s = &S;
	char why[PATH_MAX + 1024] = "";
	int status = 0;
	struct MHD_Daemon *d = NULL;
	struct sockaddr_in sa;
	s->opt = opt;
	s->audit_fd = -1;
	pthread_mutex_init(&s->audit_mu, NULL);
	if (parse_listen(opt->listen, &sa)) {
		fprintf(stderr, "train serve: --listen: '%s' is not ADDRESS:PORT (an IPv4 address)\n",
		        opt->listen);
		return EXIT_USAGE;
	}
	if (mkdir(opt->state_dir, 0700) && errno != EEXIST) {
		fprintf(stderr, "train serve: %s: %s\n", opt->state_dir, strerror(errno));
		return EXIT_IOERR;
	}
	if (load_tokens(s, why, sizeof why)) {
		fprintf(stderr, "train serve: %s\n", why);
		return EXIT_DATAERR;
	}
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/audit.jsonl", opt->state_dir);
	if ((s->audit_fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600)) < 0) {
		fprintf(stderr, "train serve: %s: %s\n", path, strerror(errno));
		return EXIT_IOERR;
	}
	if (serve_jobs_open(opt, &s->jobs, why, sizeof why)) {
		fprintf(stderr, "train serve: %s\n", why);
		close(s->audit_fd);
		return EXIT_IOERR;
	}
	if (ntohl(sa.sin_addr.s_addr) >> 24 != 127)
		fprintf(stderr, "train serve: warning: listening on %s, beyond this machine: every "
		        "request still needs a token, but the traffic is not encrypted\n", opt->listen);
	/* Jobs (and their SIGTERM from a dying server) are the supervisor's;
	 * the server's own SIGINT/SIGTERM are taken by sigwait below. */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	d = MHD_start_daemon(MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL,
	                     on_request, s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
	                     MHD_OPTION_THREAD_POOL_SIZE, (unsigned)2, MHD_OPTION_CONNECTION_LIMIT,
	                     (unsigned)1000, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)60,
	                     MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(64 * 1024),
	                     MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_END);
	if (!d) {
		fprintf(stderr, "train serve: cannot listen on %s: %s\n", opt->listen, strerror(errno));
		status = EXIT_UNAVAILABLE;
		goto out;
	}
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	unsigned port = info ? info->port : ntohs(sa.sin_port);
	char host[INET_ADDRSTRLEN];
	inet_ntop(AF_INET, &sa.sin_addr, host, sizeof host);
	/* STATE/address: where a client (or a test) finds the server */
	char tmp[PATH_MAX];
	snprintf(path, sizeof path, "%s/address", opt->state_dir);
	snprintf(tmp, sizeof tmp, "%s/.address.tmp", opt->state_dir);
	FILE *f = fopen(tmp, "we");
	if (f) {
		fprintf(f, "%s:%u\n", host, port);
		if (fclose(f) == 0)
			rename(tmp, path);
	}
	serve_jobs_start(s->jobs);
	fprintf(stderr, "train serve: listening on http://%s:%u/ (state %s, %d job%s at a time)\n",
	        host, port, opt->state_dir, opt->max_jobs, opt->max_jobs == 1 ? "" : "s");
	int sig = 0;
	do
		sigwait(&set, &sig);
	while (sig == SIGPIPE);
	fprintf(stderr, "train serve: %s: stopping\n", strsignal(sig));
out:
	if (d)
		MHD_stop_daemon(d);
	serve_jobs_close(s->jobs);
	close(s->audit_fd);
	pthread_mutex_destroy(&s->audit_mu);
	return status;
}
