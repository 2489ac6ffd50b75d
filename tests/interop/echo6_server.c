/* Seed 2 server: one dual-stack AF_INET6 socket; accept one client, wait at
 * most TIMEOUT seconds for data, then receive exactly 250 bytes
 * (SO_RCVLOWAT 250), echo them and close.
 * Usage: echo6_server PORT [TIMEOUT]  (PORT 0: any free port; TIMEOUT 30) */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUFFER_LENGTH 250

int main(int argc, char *argv[])
{
    struct sockaddr_in6 serveraddr, clientaddr;
    socklen_t addrlen = sizeof clientaddr;
    char buffer[BUFFER_LENGTH], str[INET6_ADDRSTRLEN];
    int sd, sdconn, on = 1, off = 0, lowat = BUFFER_LENGTH, rc, received = 0;
    struct timeval timeout;
    fd_set read_fd;

    if (argc < 2) { fprintf(stderr, "usage: %s PORT [TIMEOUT]\n", argv[0]); return 2; }
    setvbuf(stdout, NULL, _IOLBF, 0);
    if ((sd = socket(AF_INET6, SOCK_STREAM, 0)) < 0) { perror("socket() failed"); return 1; }
    if (setsockopt(sd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) < 0 ||
        setsockopt(sd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off) < 0) {
        perror("setsockopt() failed");
        return 1;
    }
    memset(&serveraddr, 0, sizeof serveraddr);
    serveraddr.sin6_family = AF_INET6;
    serveraddr.sin6_port = htons(atoi(argv[1]));
    serveraddr.sin6_addr = in6addr_any;
    if (bind(sd, (struct sockaddr *)&serveraddr, sizeof serveraddr) < 0) { perror("bind() failed"); return 1; }
    if (listen(sd, 10) < 0) { perror("listen() failed"); return 1; }
    addrlen = sizeof serveraddr;
    getsockname(sd, (struct sockaddr *)&serveraddr, &addrlen);
    printf("Socket port %d\n", ntohs(serveraddr.sin6_port));

    addrlen = sizeof clientaddr;
    if ((sdconn = accept(sd, (struct sockaddr *)&clientaddr, &addrlen)) < 0) { perror("accept() failed"); return 1; }
    if (inet_ntop(AF_INET6, &clientaddr.sin6_addr, str, sizeof str))
        printf("Client address is %s\n", str);

    timeout.tv_sec = argc > 2 ? atoi(argv[2]) : 30;
    timeout.tv_usec = 0;
    FD_ZERO(&read_fd);
    FD_SET(sdconn, &read_fd);
    rc = select(sdconn + 1, &read_fd, NULL, NULL, &timeout);
    if (rc < 0) { perror("select() failed"); return 1; }
    if (rc == 0) {
        printf("select() timed out\n");
        close(sdconn);
        close(sd);
        return 0;
    }
    if (setsockopt(sdconn, SOL_SOCKET, SO_RCVLOWAT, &lowat, sizeof lowat) < 0) {
        perror("setsockopt(SO_RCVLOWAT) failed");
        return 1;
    }
    while (received < BUFFER_LENGTH) {
        rc = recv(sdconn, buffer + received, BUFFER_LENGTH - received, 0);
        if (rc < 0) { perror("recv() failed"); return 1; }
        if (rc == 0) { printf("The client closed the connection before all of the data was sent\n"); return 1; }
        received += rc;
    }
    printf("%d bytes of data were received\n", received);
    if (send(sdconn, buffer, BUFFER_LENGTH, 0) != BUFFER_LENGTH) { perror("send() failed"); return 1; }
    close(sdconn);
    close(sd);
    return 0;
}
