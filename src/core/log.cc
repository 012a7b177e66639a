#include "core/log.h"

#include "absl/strings/str_cat.h"
#include "core/strings.h"
#include "spdlog/sinks/stdout_sinks.h"

namespace ward::core {

bool IsValidLogLevel(std::string_view level) {
  return level == "trace" || level == "debug" || level == "info" || level == "warn" ||
         level == "error" || level == "off";
}

absl::Status InitLogging(std::string_view level) {
  if (!IsValidLogLevel(level)) {
    return absl::InvalidArgumentError(absl::StrCat("unknown log level \"", ToAbsl(level), "\""));
  }
  // Logs go to stderr so stdout stays for output meant for the user (the dev banner).
  auto logger = spdlog::stderr_logger_mt("ward");
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %l %v", spdlog::pattern_time_type::utc);
  logger->set_level(spdlog::level::from_str(std::string(level)));
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
  return absl::OkStatus();
}

}  // namespace ward::core
