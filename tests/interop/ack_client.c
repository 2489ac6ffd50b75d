/* Seed 3 client: connect, print the acknowledgement, prompt, send one line
 * from standard input without its newline, close.  Usage: ack_client HOST PORT */
#define _POSIX_C_SOURCE 200809L
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char *argv[])
{
    struct addrinfo hints, *res, *ai;
    char buffer[256];
    int sockfd = -1;
    ssize_t n;

    if (argc != 3) { fprintf(stderr, "usage: %s HOST PORT\n", argv[0]); return 2; }
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(argv[1], argv[2], &hints, &res) != 0) { fprintf(stderr, "ERROR, no such host\n"); return 1; }
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        if ((sockfd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol)) < 0) continue;
        if (connect(sockfd, ai->ai_addr, ai->ai_addrlen) == 0) break;
        close(sockfd);
        sockfd = -1;
    }
    freeaddrinfo(res);
    if (sockfd < 0) { perror("ERROR connecting"); return 1; }

    memset(buffer, 0, sizeof buffer);
    if ((n = read(sockfd, buffer, sizeof buffer - 1)) < 0) { perror("ERROR reading from socket"); return 1; }
    printf("%s\n", buffer);
    printf("What message for the server? : ");
    fflush(stdout);
    memset(buffer, 0, sizeof buffer);
    if (fgets(buffer, sizeof buffer, stdin) == NULL) { fprintf(stderr, "no message\n"); return 1; }
    buffer[strcspn(buffer, "\r\n")] = '\0';
    if (write(sockfd, buffer, strlen(buffer)) < 0) { perror("ERROR writing to socket"); return 1; }
    close(sockfd);
    return 0;
}
