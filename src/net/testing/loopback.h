#pragma once

// Test helper: a plain TCP connection to a server on 127.0.0.1, for tests that drive TLS by
// hand (raw OpenSSL clients, resumption checks).

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstdint>

namespace ward::net::testing {

// Returns a socket connected to 127.0.0.1:`port` whose reads time out after `timeout_seconds`
// (so a test that waits for a reply that never comes fails instead of hanging), or -1 if the
// connection failed. The caller closes it.
inline int ConnectLoopback(uint16_t port, int timeout_seconds = 10) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  timeval tv{};
  tv.tv_sec = timeout_seconds;
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

}  // namespace ward::net::testing
