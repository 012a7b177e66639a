#include "core/clock.h"

namespace ward::core {

RealClock& RealClock::Get() {
  static RealClock* clock = new RealClock();
  return *clock;
}

}  // namespace ward::core
