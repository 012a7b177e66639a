// Boost's assertion handler for every Ward binary.
//
// The build defines BOOST_ENABLE_ASSERT_DEBUG_HANDLER for all of Ward's code, so BOOST_ASSERT
// calls the functions below where NDEBUG is not defined (the Debug, ASan/UBSan and fuzz builds)
// and compiles to nothing in release builds, exactly as a plain assert() would.
//
// A failed assertion prints where it failed and aborts, like assert(). One assertion is known to
// be wrong and is let through: Boost.Beast 1.81 (Debian 12's Boost) asserts `n >= 5` in
// basic_parser::parse_chunk_header when it is called again after the final chunk `0\r\n` was
// seen, but a peer may send the rest of a chunked body a byte at a time, so the parser can be
// called with 4 bytes (`0\r\n\r`). The code after the assertion handles that case correctly (it
// looks for the end of the trailers and asks for more bytes); Beast corrected the assertion
// upstream (boostorg/beast pull request 2861, in Boost 1.86). Without this exception, a client
// that trickles the end of a chunked body aborts any Ward server built with assertions on.

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace {

// Whether the failed assertion is the one in Beast 1.81's parse_chunk_header described above.
bool IsKnownWrongAssertion(const char* expr, const char* function, const char* file) {
  constexpr char kParserFile[] = "boost/beast/http/impl/basic_parser.ipp";
  const size_t file_len = std::strlen(file);
  const size_t suffix_len = sizeof(kParserFile) - 1;
  return file_len >= suffix_len && std::strcmp(file + file_len - suffix_len, kParserFile) == 0 &&
         std::strstr(function, "parse_chunk_header") != nullptr &&
         std::strcmp(expr, "n >= 5") == 0;
}

}  // namespace

namespace boost {

void assertion_failed(const char* expr, const char* function, const char* file, long line) {
  if (IsKnownWrongAssertion(expr, function, file)) return;
  std::fprintf(stderr, "%s:%ld: %s: Assertion `%s' failed.\n", file, line, function, expr);
  std::abort();
}

void assertion_failed_msg(const char* expr, const char* msg, const char* function,
                          const char* file, long line) {
  std::fprintf(stderr, "%s:%ld: %s: Assertion `%s' failed: %s\n", file, line, function, expr,
               msg);
  std::abort();
}

}  // namespace boost
