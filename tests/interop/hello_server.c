/* Seed 1 server ("hello there"): accept one connection, read up to 100
 * bytes, print them.  Usage: hello_server PORT [HOST]  (PORT 0: any free port;
 * HOST default 127.0.0.1) */
#define _POSIX_C_SOURCE 200809L
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char *argv[])
{
    struct addrinfo hints, *res;
    struct sockaddr_storage addr;
    socklen_t len = sizeof addr;
    char host[64], port[16], buf[101];
    int sock, conn, one = 1;
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
    if ((sock = socket(res->ai_family, SOCK_STREAM, 0)) < 0) { perror("socket"); return 1; }
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(sock, res->ai_addr, res->ai_addrlen) < 0 || listen(sock, 5) < 0) {
        perror("bind/listen");
        return 1;
    }
    freeaddrinfo(res);
    getsockname(sock, (struct sockaddr *)&addr, &len);
    getnameinfo((struct sockaddr *)&addr, len, host, sizeof host, port, sizeof port,
                NI_NUMERICHOST | NI_NUMERICSERV);
    printf("Socket port %s\n", port);

    len = sizeof addr;
    conn = accept(sock, (struct sockaddr *)&addr, &len);
    if (conn < 0) { perror("accept"); return 1; }
    getnameinfo((struct sockaddr *)&addr, len, host, sizeof host, port, sizeof port,
                NI_NUMERICHOST | NI_NUMERICSERV);
    printf("Server accepts connection from: %s %s\n", host, port);
    n = read(conn, buf, 100);
    if (n < 0) { perror("read"); return 1; }
    buf[n] = '\0';
    printf("Server read: %s\n", buf);
    close(conn);
    close(sock);
    return 0;
}
