/* Seed 4 server: bind port 0, print it, accept connections one at a time and
 * print every read() until the peer closes.  The original loops forever; this
 * one exits after MAXCONN connections.  Usage: read_server MAXCONN [HOST]
 * (HOST default 127.0.0.1) */
#define _POSIX_C_SOURCE 200809L
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char *argv[])
{
    struct addrinfo hints, *res;
    struct sockaddr_storage server;
    socklen_t length = sizeof server;
    char buf[1024], port[16];
    int sock, msgsock, i, maxconn;
    ssize_t rval;

    if (argc < 2) { fprintf(stderr, "usage: %s MAXCONN [HOST]\n", argv[0]); return 2; }
    setvbuf(stdout, NULL, _IOLBF, 0);
    maxconn = atoi(argv[1]);
    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    if (getaddrinfo(argc > 2 ? argv[2] : "127.0.0.1", "0", &hints, &res) != 0) {
        fprintf(stderr, "unknown host\n");
        return 1;
    }
    if ((sock = socket(res->ai_family, SOCK_STREAM, 0)) < 0) { perror("opening stream socket"); return 1; }
    if (bind(sock, res->ai_addr, res->ai_addrlen) < 0) { perror("binding stream socket"); return 1; }
    freeaddrinfo(res);
    if (getsockname(sock, (struct sockaddr *)&server, &length) < 0) { perror("getting socket name"); return 1; }
    getnameinfo((struct sockaddr *)&server, length, NULL, 0, port, sizeof port, NI_NUMERICSERV);
    printf("Socket port %s\n", port);
    listen(sock, 5);
    for (i = 0; i < maxconn; i++) {
        if ((msgsock = accept(sock, NULL, NULL)) < 0) { perror("accept"); return 1; }
        do {
            memset(buf, 0, sizeof buf);
            if ((rval = read(msgsock, buf, sizeof buf - 1)) < 0)
                perror("reading stream message");
            else if (rval == 0)
                printf("Ending connection\n");
            else
                printf("-->%s\n", buf);
        } while (rval > 0);
        close(msgsock);
    }
    close(sock);
    return 0;
}
