/* Seed 2 client: resolve SERVER (a name, an IPv4 or an IPv6 literal), send
 * 250 bytes, recv() until all 250 are back, check them.
 * Usage: echo6_client SERVER PORT   Exit 0 only if every byte came back. */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUFFER_LENGTH 250

int main(int argc, char *argv[])
{
    struct addrinfo hints, *res, *ai;
    struct in6_addr serveraddr;
    char buffer[BUFFER_LENGTH], back[BUFFER_LENGTH];
    int sd = -1, rc, i, received = 0;

    if (argc != 3) { fprintf(stderr, "usage: %s SERVER PORT\n", argv[0]); return 2; }
    setvbuf(stdout, NULL, _IOLBF, 0);
    memset(&hints, 0, sizeof hints);
    hints.ai_flags = AI_V4MAPPED | AI_ADDRCONFIG | AI_NUMERICSERV;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    if (inet_pton(AF_INET, argv[1], &serveraddr) == 1) {
        hints.ai_family = AF_INET;
        hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
    } else if (inet_pton(AF_INET6, argv[1], &serveraddr) == 1) {
        hints.ai_family = AF_INET6;
        hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
    }
    if ((rc = getaddrinfo(argv[1], argv[2], &hints, &res)) != 0) {
        fprintf(stderr, "Host not found --> %s\n", gai_strerror(rc));
        return 1;
    }
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        if ((sd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol)) < 0) continue;
        if (connect(sd, ai->ai_addr, ai->ai_addrlen) == 0) break;
        close(sd);
        sd = -1;
    }
    freeaddrinfo(res);
    if (sd < 0) { perror("connect() failed"); return 1; }

    for (i = 0; i < BUFFER_LENGTH; i++) buffer[i] = (char)('a' + i % 26);
    if (send(sd, buffer, sizeof buffer, 0) != (ssize_t)sizeof buffer) { perror("send() failed"); return 1; }
    while (received < BUFFER_LENGTH) {
        rc = recv(sd, back + received, BUFFER_LENGTH - received, 0);
        if (rc < 0) { perror("recv() failed"); return 1; }
        if (rc == 0) { printf("The server closed the connection\n"); return 1; }
        received += rc;
    }
    close(sd);
    if (memcmp(buffer, back, BUFFER_LENGTH) != 0) { printf("echoed data differs\n"); return 1; }
    printf("%d bytes of data were echoed\n", received);
    return 0;
}
