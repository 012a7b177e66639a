#include "api/http_status.h"

#include "gtest/gtest.h"

namespace ward::api {
namespace {

TEST(HttpStatusTest, MapsEveryCodeTheVaultWay) {
  EXPECT_EQ(HttpStatusFor(absl::OkStatus()), 200);
  EXPECT_EQ(HttpStatusFor(absl::InvalidArgumentError("x")), 400);
  EXPECT_EQ(HttpStatusFor(absl::FailedPreconditionError("cas")), 400);
  EXPECT_EQ(HttpStatusFor(absl::AlreadyExistsError("x")), 400);
  EXPECT_EQ(HttpStatusFor(absl::PermissionDeniedError("x")), 403);
  EXPECT_EQ(HttpStatusFor(absl::UnauthenticatedError("x")), 403);
  EXPECT_EQ(HttpStatusFor(absl::NotFoundError("")), 404);
  EXPECT_EQ(HttpStatusFor(absl::UnimplementedError("x")), 405);
  EXPECT_EQ(HttpStatusFor(absl::ResourceExhaustedError("x")), 429);
  EXPECT_EQ(HttpStatusFor(absl::UnavailableError("Vault is sealed")), 503);
  EXPECT_EQ(HttpStatusFor(absl::AbortedError("race")), 503);
  EXPECT_EQ(HttpStatusFor(absl::DeadlineExceededError("x")), 504);
  EXPECT_EQ(HttpStatusFor(absl::InternalError("x")), 500);
  EXPECT_EQ(HttpStatusFor(absl::DataLossError("x")), 500);
}

}  // namespace
}  // namespace ward::api
