#pragma once

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <memory>
#include <utility>
#include <vector>

namespace tether::series {

/// Slice ids are below this (the bound of `tether.slice-count`). A `slice_map`
/// holds a pointer per id up to the highest it holds, so ids from the network are
/// checked against it before they become keys.
constexpr uint32_t max_slice_count = 1u << 16;

/// What a shard keeps per slice it hosts, by slice id: the subset of
/// `std::unordered_map<uint32_t, T>` the shard uses, over a vector indexed by the
/// slice id. Slice ids are dense and bounded by the table's slice count, so a lookup
/// is an index and one pointer, where a hash map costs a bucket walk and a node per
/// lookup (the shard's three slice maps were 1.7 % of a node's CPU under load).
///
/// Entries live on the heap: references to them stay valid until they are erased,
/// whatever else is inserted. Iteration visits entries in slice order. Iterators are
/// invalidated by inserting a slice id beyond every earlier one (as a hash map's are
/// by a rehash).
template <class T>
class slice_map {
public:
  using key_type = uint32_t;
  using mapped_type = T;
  using value_type = std::pair<const uint32_t, T>;
  using size_type = std::size_t;

  template <class Value, class Table>
  class basic_iterator {
  public:
    using iterator_category = std::forward_iterator_tag;
    using value_type = std::pair<const uint32_t, T>;
    using difference_type = std::ptrdiff_t;
    using pointer = Value*;
    using reference = Value&;

    basic_iterator() = default;
    basic_iterator(Table* table, size_t pos) : table_(table), pos_(pos) {
      skip();
    }
    /// A const iterator from a mutable one.
    template <class V2, class T2>
    basic_iterator(const basic_iterator<V2, T2>& other)
      : table_(other.table_), pos_(other.pos_) {
    }

    reference operator*() const {
      return *(*table_)[pos_];
    }
    pointer operator->() const {
      return (*table_)[pos_].get();
    }
    basic_iterator& operator++() {
      ++pos_;
      skip();
      return *this;
    }
    basic_iterator operator++(int) {
      auto old = *this;
      ++*this;
      return old;
    }
    friend bool operator==(const basic_iterator& a, const basic_iterator& b) {
      return a.pos_ == b.pos_;
    }
    friend bool operator!=(const basic_iterator& a, const basic_iterator& b) {
      return a.pos_ != b.pos_;
    }

  private:
    template <class, class>
    friend class basic_iterator;
    friend class slice_map;

    void skip() {
      while (pos_ < table_->size() && !(*table_)[pos_])
        ++pos_;
    }

    Table* table_ = nullptr;
    size_t pos_ = 0;
  };

  using table_type = std::vector<std::unique_ptr<value_type>>;
  using iterator = basic_iterator<value_type, table_type>;
  using const_iterator = basic_iterator<const value_type, const table_type>;

  iterator begin() {
    return {&table_, 0};
  }
  iterator end() {
    return {&table_, table_.size()};
  }
  const_iterator begin() const {
    return {&table_, 0};
  }
  const_iterator end() const {
    return {&table_, table_.size()};
  }

  size_type size() const noexcept {
    return size_;
  }
  bool empty() const noexcept {
    return size_ == 0;
  }

  iterator find(uint32_t slice) {
    return has(slice) ? iterator{&table_, slice} : end();
  }
  const_iterator find(uint32_t slice) const {
    return has(slice) ? const_iterator{&table_, slice} : end();
  }
  size_type count(uint32_t slice) const {
    return has(slice) ? 1 : 0;
  }

  /// The entry of `slice`, made (value-initialised) if missing.
  T& operator[](uint32_t slice) {
    return try_emplace(slice).first->second;
  }

  template <class... Args>
  std::pair<iterator, bool> try_emplace(uint32_t slice, Args&&... args) {
    if (has(slice))
      return {iterator{&table_, slice}, false};
    if (slice >= table_.size())
      table_.resize(static_cast<size_t>(slice) + 1);
    table_[slice] = std::make_unique<value_type>(
      std::piecewise_construct, std::forward_as_tuple(slice),
      std::forward_as_tuple(std::forward<Args>(args)...));
    ++size_;
    return {iterator{&table_, slice}, true};
  }

  template <class V>
  std::pair<iterator, bool> emplace(uint32_t slice, V&& value) {
    return try_emplace(slice, std::forward<V>(value));
  }

  size_type erase(uint32_t slice) {
    if (!has(slice))
      return 0;
    table_[slice].reset();
    --size_;
    return 1;
  }

  /// Erases the entry at `pos`; the next entry's iterator.
  iterator erase(const_iterator pos) {
    auto slice = static_cast<uint32_t>(pos.pos_);
    erase(slice);
    return iterator{&table_, static_cast<size_t>(slice) + 1};
  }
  iterator erase(iterator pos) {
    return erase(const_iterator{pos});
  }

  void clear() {
    table_.clear();
    size_ = 0;
  }

private:
  bool has(uint32_t slice) const noexcept {
    return slice < table_.size() && table_[slice] != nullptr;
  }

  table_type table_;
  size_type size_ = 0;
};

} // namespace tether::series
