/* Seed 1 client ("hello there"): connect, announce, write 11 bytes, exit.
 * Usage: hello_client HOST PORT */
#define _POSIX_C_SOURCE 200809L
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char *argv[])
{
    struct addrinfo hints, *res, *ai;
    char host[64], port[16];
    const char *msg = "hello there";
    int sock = -1;

    if (argc != 3) { fprintf(stderr, "usage: %s HOST PORT\n", argv[0]); return 2; }
    setvbuf(stdout, NULL, _IOLBF, 0);
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(argv[1], argv[2], &hints, &res) != 0) { fprintf(stderr, "unknown host\n"); return 1; }
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        sock = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (sock < 0) continue;
        if (connect(sock, ai->ai_addr, ai->ai_addrlen) == 0) break;
        close(sock);
        sock = -1;
    }
    if (sock < 0) { perror("connect"); freeaddrinfo(res); return 1; }
    getnameinfo(ai->ai_addr, ai->ai_addrlen, host, sizeof host, port, sizeof port,
                NI_NUMERICHOST | NI_NUMERICSERV);
    freeaddrinfo(res);
    printf("Client connected to: %s %s\n", host, port);
    printf("Client sends: %s\n", msg);
    if (write(sock, msg, strlen(msg)) != (ssize_t)strlen(msg)) { perror("write"); return 1; }
    close(sock);
    return 0;
}
