/* Seed 4 client: connect and write DATA including its terminating NUL
 * (sizeof DATA), then close.  Usage: streamwrite HOST PORT */
#define _POSIX_C_SOURCE 200809L
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define DATA "Half a league, half a league ... "

int main(int argc, char *argv[])
{
    struct addrinfo hints, *res, *ai;
    int sock = -1;

    if (argc != 3) { fprintf(stderr, "usage: %s HOST PORT\n", argv[0]); return 2; }
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(argv[1], argv[2], &hints, &res) != 0) { fprintf(stderr, "%s: unknown host\n", argv[1]); return 1; }
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        if ((sock = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol)) < 0) continue;
        if (connect(sock, ai->ai_addr, ai->ai_addrlen) == 0) break;
        close(sock);
        sock = -1;
    }
    freeaddrinfo(res);
    if (sock < 0) { perror("connecting stream socket"); return 1; }
    if (write(sock, DATA, sizeof DATA) < 0) { perror("writing on stream socket"); return 1; }
    close(sock);
    return 0;
}
