/* Seed 3 server: accept one client, send the 18-byte acknowledgement, read
 * one message (up to 127 bytes), print it, exit.
 * Usage: ack_server PORT [HOST]  (PORT 0: any free port; HOST default 127.0.0.1) */
#define _POSIX_C_SOURCE 200809L
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char *argv[])
{
    struct addrinfo hints, *res;
    struct sockaddr_storage cli_addr;
    socklen_t clilen = sizeof cli_addr;
    char buffer[128], host[64], port[16];
    const char *ack = "You are connected!";
    int sockfd, newsockfd, one = 1;
    ssize_t n;

    if (argc < 2) { fprintf(stderr, "usage: %s PORT [HOST]\n", argv[0]); return 2; }
    setvbuf(stdout, NULL, _IOLBF, 0);
    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    if (getaddrinfo(argc > 2 ? argv[2] : "127.0.0.1", argv[1], &hints, &res) != 0) {
        fprintf(stderr, "unknown host\n");
        return 1;
    }
    if ((sockfd = socket(res->ai_family, SOCK_STREAM, 0)) < 0) { perror("ERROR opening socket"); return 1; }
    setsockopt(sockfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(sockfd, res->ai_addr, res->ai_addrlen) < 0) { perror("ERROR on binding"); return 1; }
    freeaddrinfo(res);
    listen(sockfd, 5);
    getsockname(sockfd, (struct sockaddr *)&cli_addr, &clilen);
    getnameinfo((struct sockaddr *)&cli_addr, clilen, host, sizeof host, port, sizeof port,
                NI_NUMERICHOST | NI_NUMERICSERV);
    printf("Socket port %s\n", port);

    clilen = sizeof cli_addr;
    if ((newsockfd = accept(sockfd, (struct sockaddr *)&cli_addr, &clilen)) < 0) { perror("ERROR on accept"); return 1; }
    getnameinfo((struct sockaddr *)&cli_addr, clilen, host, sizeof host, port, sizeof port,
                NI_NUMERICHOST | NI_NUMERICSERV);
    printf("server: got connection from = %s and port = %s\n", host, port);
    if (write(newsockfd, ack, strlen(ack)) != (ssize_t)strlen(ack)) { perror("ERROR writing to socket"); return 1; }
    memset(buffer, 0, sizeof buffer);
    if ((n = read(newsockfd, buffer, 127)) < 0) { perror("ERROR reading from socket"); return 1; }
    printf("Got the message:%s\n", buffer);
    close(newsockfd);
    close(sockfd);
    return 0;
}
