/*
 * serve_bench.c - a small HTTP/1.1 load client for bench/serve_bench.sh:
 * CLIENTS threads, each with its own keep-alive connection to 127.0.0.1,
 * send GET PATH with a bearer token for SECONDS and read each answer
 * (Content-Length bodies); with RATE, the clients together pace themselves
 * to RATE requests/s (each waits for its next slot).  Prints one line:
 *   requests N errors E seconds S req_per_s R p50_ms A p99_ms B
 * Loopback only: the address is fixed.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int port;
static char req[2048];
static size_t req_len;
static double deadline;
static double interval; /* seconds between one client's requests; 0: flat out */

#define MAX_SAMPLES 400000

typedef struct worker {
	pthread_t t;
	long ok, errors;
	float *lat; /* ms, one per request up to MAX_SAMPLES / clients */
	long n_lat, cap_lat;
} worker;

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int connect_one(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

/* One request and its answer; 0 on a 200. */
static int one_request(int fd, char *buf, size_t cap)
{
	if (write(fd, req, req_len) != (ssize_t)req_len)
		return -1;
	size_t have = 0;
	char *body = NULL;
	long clen = -1;
	for (;;) {
		ssize_t n = read(fd, buf + have, cap - have - 1);
		if (n <= 0)
			return -1;
		have += (size_t)n;
		buf[have] = '\0';
		if (!body && (body = strstr(buf, "\r\n\r\n"))) {
			body += 4;
			char *cl = strcasestr(buf, "\r\nContent-Length:");
			clen = cl ? strtol(cl + 17, NULL, 10) : 0;
		}
		if (body && (long)(have - (size_t)(body - buf)) >= clen)
			break;
		if (have + 1 >= cap)
			return -1;
	}
	return strncmp(buf, "HTTP/1.1 200", 12) == 0 ? 0 : 1;
}

static void *run(void *arg)
{
	worker *w = arg;
	char *buf = malloc(1 << 16);
	int fd = -1;
	double next = now();
	while (now() < deadline) {
		if (interval > 0) {
			next += interval;
			double wait = next - now();
			if (wait > 0)
				usleep((useconds_t)(wait * 1e6));
		}
		if (fd < 0 && (fd = connect_one()) < 0) {
			w->errors++;
			usleep(1000);
			continue;
		}
		double t0 = now();
		int rc = one_request(fd, buf, 1 << 16);
		if (rc < 0) {
			close(fd);
			fd = -1;
			w->errors++;
			continue;
		}
		if (rc)
			w->errors++;
		else
			w->ok++;
		if (w->n_lat < w->cap_lat)
			w->lat[w->n_lat++] = (float)((now() - t0) * 1e3);
	}
	if (fd >= 0)
		close(fd);
	free(buf);
	return NULL;
}

static int cmp_float(const void *a, const void *b)
{
	float x = *(const float *)a, y = *(const float *)b;
	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	if (argc != 6 && argc != 7) {
		fprintf(stderr, "usage: serve_bench PORT PATH TOKEN CLIENTS SECONDS [RATE]\n");
		return 64;
	}
	port = atoi(argv[1]);
	int clients = atoi(argv[4]);
	double seconds = atof(argv[5]);
	if (port <= 0 || port > 65535 || clients < 1 || clients > 1024 || !(seconds > 0 && seconds <= 120)) {
		fprintf(stderr, "serve_bench: bad arguments\n");
		return 64;
	}
	if (argc == 7 && atof(argv[6]) > 0)
		interval = clients / atof(argv[6]);
	req_len = (size_t)snprintf(req, sizeof req,
	                           "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nAuthorization: Bearer %s\r\n\r\n",
	                           argv[2], port, argv[3]);
	worker *w = calloc((size_t)clients, sizeof *w);
	double t0 = now();
	deadline = t0 + seconds;
	for (int i = 0; i < clients; i++) {
		w[i].cap_lat = MAX_SAMPLES / clients;
		w[i].lat = malloc((size_t)w[i].cap_lat * sizeof(float));
		pthread_create(&w[i].t, NULL, run, &w[i]);
	}
	long ok = 0, errors = 0, n = 0;
	for (int i = 0; i < clients; i++) {
		pthread_join(w[i].t, NULL);
		ok += w[i].ok;
		errors += w[i].errors;
		n += w[i].n_lat;
	}
	double el = now() - t0;
	float *all = malloc((size_t)(n ? n : 1) * sizeof *all);
	long k = 0;
	for (int i = 0; i < clients; i++) {
		memcpy(all + k, w[i].lat, (size_t)w[i].n_lat * sizeof *all);
		k += w[i].n_lat;
		free(w[i].lat);
	}
	qsort(all, (size_t)n, sizeof *all, cmp_float);
	printf("requests %ld errors %ld seconds %.2f req_per_s %.0f p50_ms %.2f p99_ms %.2f\n", ok,
	       errors, el, ok / el, n ? all[n / 2] : 0.0, n ? all[(long)(n * 0.99)] : 0.0);
	free(all);
	free(w);
	return 0;
}
