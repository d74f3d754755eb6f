// bench/port_proxy_upstream.c — the in-sandbox server of bench/port_proxy.py: a tiny epoll
// HTTP/1.1 keep-alive responder ("ok", 2 bytes) so the proxies, not the upstream, are measured.
// Built static on the host and copied into the sandbox. Not a general HTTP server.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

static const char resp[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok";

// usage: upstream [port [IPv4 address to bind; default all]]
int main(int argc, char** argv) {
  int port = argc > 1 ? atoi(argv[1]) : 8000;
  int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;
  setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = INADDR_ANY};
  if (argc > 2 && inet_pton(AF_INET, argv[2], &a.sin_addr) != 1) return 2;
  if (bind(ls, (struct sockaddr*)&a, sizeof a) || listen(ls, 1024)) return 1;
  int ep = epoll_create1(0);
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = ls}, evs[256];
  epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev);
  static char buf[65536];
  for (;;) {
    int n = epoll_wait(ep, evs, 256, -1);
    for (int i = 0; i < n; ++i) {
      int fd = evs[i].data.fd;
      if (fd == ls) {
        int c;
        while ((c = accept4(ls, 0, 0, SOCK_NONBLOCK)) >= 0) {
          setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          struct epoll_event ce = {.events = EPOLLIN, .data.fd = c};
          epoll_ctl(ep, EPOLL_CTL_ADD, c, &ce);
        }
        continue;
      }
      ssize_t r = read(fd, buf, sizeof buf);
      if (r <= 0) { close(fd); continue; }
      // One response per request head in what arrived (pipelining-safe for small GETs).
      for (char* p = buf; (p = memmem(p, buf + r - p, "\r\n\r\n", 4)); p += 4)
        if (write(fd, resp, sizeof resp - 1) < 0) break;
    }
  }
}
