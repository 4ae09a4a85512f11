/*
 * addr.c - IP literals, host names and unix paths to socket addresses and
 * back (inet_pton/getaddrinfo/inet_ntop): parsing --bind and --metrics-bind,
 * formatting peers for the logs. The
 * contracts are in addr.h.
 */
#include "addr.h"

#include <arpa/inet.h>
#include <stddef.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

void addr_set_port(struct sockaddr_storage *ss, unsigned port)
{
    if (ss->ss_family == AF_INET6)
        ((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
    else if (ss->ss_family == AF_INET)
        ((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
}

int addr_resolve(const char *name, unsigned port, struct sockaddr_storage *ss, socklen_t *sl, int max,
                 const char **why)
{
    struct addrinfo hints = {.ai_flags = AI_PASSIVE, .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res;
    int n = 0, rv = getaddrinfo(name, NULL, &hints, &res);

    if (rv != 0) {
        *why = gai_strerror(rv);
        return -1;
    }
    for (const struct addrinfo *ai = res; ai && n < max; ai = ai->ai_next) {
        if ((ai->ai_family != AF_INET && ai->ai_family != AF_INET6) || ai->ai_addrlen > sizeof(*ss))
            continue;
        int dup = 0;
        for (int i = 0; i < n; i++)
            dup |= sl[i] == ai->ai_addrlen && memcmp(&ss[i], ai->ai_addr, ai->ai_addrlen) == 0;
        if (dup)
            continue;
        memset(&ss[n], 0, sizeof(ss[n]));
        memcpy(&ss[n], ai->ai_addr, ai->ai_addrlen);
        sl[n] = (socklen_t)ai->ai_addrlen;
        n++;
    }
    freeaddrinfo(res);
    for (int i = 0; i < n; i++)
        addr_set_port(&ss[i], port);
    if (n == 0)
        *why = "no IPv4 or IPv6 address";
    return n ? n : -1;
}

int addr_unix(const char *path, struct sockaddr_storage *ss, socklen_t *sl)
{
    struct sockaddr_un *su = (struct sockaddr_un *)ss;
    size_t n = strlen(path);

    if (n == 0 || n >= sizeof(su->sun_path))
        return -1;
    memset(ss, 0, sizeof(*ss));
    su->sun_family = AF_UNIX;
    memcpy(su->sun_path, path, n + 1);
    *sl = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
    return 0;
}

int addr_parse(const char *host, size_t n, unsigned port, struct sockaddr_storage *ss, socklen_t *sl)
{
    char h[INET6_ADDRSTRLEN + 1];
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
    struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

    memset(ss, 0, sizeof(*ss));
    if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
        host++;
        n -= 2;
    }
    if (n == 0 || n >= sizeof(h))
        return -1;
    memcpy(h, host, n);
    h[n] = 0;
    if (inet_pton(AF_INET6, h, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        *sl = sizeof(*s6);
    } else if (inet_pton(AF_INET, h, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        *sl = sizeof(*s4);
    } else {
        return -1;
    }
    addr_set_port(ss, port);
    return 0;
}

const char *addr_format(const struct sockaddr *sa, char *buf, size_t cap)
{
    char a[INET6_ADDRSTRLEN] = "?";

    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
        if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
            inet_ntop(AF_INET, s6->sin6_addr.s6_addr + 12, a, sizeof(a));
            snprintf(buf, cap, "%s:%u", a, ntohs(s6->sin6_port));
        } else {
            inet_ntop(AF_INET6, &s6->sin6_addr, a, sizeof(a));
            snprintf(buf, cap, "[%s]:%u", a, ntohs(s6->sin6_port));
        }
    } else if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &s4->sin_addr, a, sizeof(a));
        snprintf(buf, cap, "%s:%u", a, ntohs(s4->sin_port));
    } else if (sa->sa_family == AF_UNIX) {
        const struct sockaddr_un *su = (const struct sockaddr_un *)sa;
        snprintf(buf, cap, su->sun_path[0] ? "unix:%s" : "unix", su->sun_path);
    } else {
        snprintf(buf, cap, "(family %d)", sa->sa_family);
    }
    return buf;
}
