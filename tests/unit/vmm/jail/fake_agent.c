/* tests/unit/vmm/jail/fake_agent.c — a stand-in for warren-agent in the jail driver tests:
 * accepts on fd 3 (--listen-fd 3), runs one `/bin/sh -c <line>` per connection and answers its
 * output then "\nEXIT:<code>\n". Static, so it needs nothing inside the image. Test-only. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static void serve(int c) {
  char cmd[8192];
  size_t n = 0;
  while (n < sizeof cmd - 1) {
    ssize_t r = read(c, cmd + n, 1);
    if (r <= 0) return;
    if (cmd[n] == '\n') break;
    n++;
  }
  cmd[n] = 0;
  pid_t pid = fork();
  if (pid == 0) {
    dup2(c, 1);
    dup2(c, 2);
    int devnull = open("/dev/null", 0);
    if (devnull >= 0) dup2(devnull, 0);
    execl("/bin/sh", "sh", "-c", cmd, (char*)NULL);
    dprintf(2, "exec /bin/sh: %s\n", strerror(errno));
    _exit(127);
  }
  int st = 0;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
  int code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  dprintf(c, "\nEXIT:%d\n", code);
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  for (;;) {
    int c = accept(3, NULL, NULL);
    if (c < 0) {
      if (errno == EINTR) continue;
      return 1;
    }
    pid_t h = fork();  /* one handler per connection; PID 1 reaps everything below */
    if (h == 0) {
      close(3);
      serve(c);
      _exit(0);
    }
    close(c);
    while (waitpid(-1, NULL, WNOHANG) > 0) {}
  }
}
