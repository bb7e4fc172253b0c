#include "series/dedup_window.hpp"

namespace tether::series {

dedup_window::verdict dedup_window::check(uint64_t seq) const noexcept {
  if (seq > max_)
    return verdict::fresh;
  auto offset = max_ - seq;
  if (offset == 0)
    return verdict::duplicate;
  if (offset > span)
    return verdict::too_old;
  return test(offset - 1) ? verdict::duplicate : verdict::fresh;
}

void dedup_window::record(uint64_t seq) noexcept {
  if (seq > max_) {
    auto shift = seq - max_;
    if (shift >= span) {
      bits_[0] = bits_[1] = 0;
    } else if (shift >= 64) {
      bits_[1] = bits_[0] << (shift - 64);
      bits_[0] = 0;
    } else {
      bits_[1] = (bits_[1] << shift) | (bits_[0] >> (64 - shift));
      bits_[0] <<= shift;
    }
    // The old highest is now `shift` below the new one.
    if (max_ != 0 && shift <= span)
      bits_[(shift - 1) / 64] |= uint64_t{1} << ((shift - 1) % 64);
    max_ = seq;
    return;
  }
  auto offset = max_ - seq;
  if (offset == 0 || offset > span)
    return;
  bits_[(offset - 1) / 64] |= uint64_t{1} << ((offset - 1) % 64);
}

} // namespace tether::series
