#include "net/http.h"

#include <memory>
#include <utility>

#include "absl/strings/match.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "core/strings.h"

namespace ward::net {

std::string_view HttpRequest::Header(std::string_view lower_name) const {
  for (const auto& [name, value] : headers) {
    if (name == lower_name) return value;
  }
  return {};
}

std::string_view HttpResponse::Header(std::string_view name) const {
  for (const auto& [field, value] : headers) {
    if (absl::EqualsIgnoreCase(core::ToAbsl(field), core::ToAbsl(name))) return value;
  }
  return {};
}

HttpResponse AwaitHeld(HttpResponse response) {
  if (!response.hold) return response;
  struct Wait {
    absl::Mutex mu;
    bool released ABSL_GUARDED_BY(mu) = false;
    std::optional<HttpResponse> replacement ABSL_GUARDED_BY(mu);
  };
  auto wait = std::make_shared<Wait>();
  std::function<void(HttpResponse::Release)> hold = std::move(response.hold);
  response.hold = nullptr;
  hold([wait](std::optional<HttpResponse> replacement) {
    absl::MutexLock lock(&wait->mu);
    if (wait->released) return;
    wait->released = true;
    wait->replacement = std::move(replacement);
  });
  absl::MutexLock lock(&wait->mu);
  if (!wait->mu.AwaitWithTimeout(absl::Condition(&wait->released),
                                 absl::FromChrono(response.hold_timeout))) {
    wait->released = true;  // a later release is ignored
    if (response.hold_timeout_response != nullptr) return *response.hold_timeout_response;
    return HttpResponse{500, {}, R"({"errors":["internal error"]})"};
  }
  if (wait->replacement.has_value()) return std::move(*wait->replacement);
  return response;
}

}  // namespace ward::net
