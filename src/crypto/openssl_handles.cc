#include "crypto/openssl_handles.h"

#include <string>

#include <openssl/err.h>

namespace ward::crypto {

std::string LastOpenSslError() {
  unsigned long code = ERR_get_error();
  if (code == 0) return "unknown OpenSSL error";
  char buf[256];
  ERR_error_string_n(code, buf, sizeof(buf));
  ERR_clear_error();
  return buf;
}

}  // namespace ward::crypto
