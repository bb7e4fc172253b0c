#include "shard/slice_map.hpp"

#include <memory>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

using tether::series::slice_map;

TEST_CASE("slice_map keeps entries by slice id, as the shard's hash maps did",
          "[slice_map]") {
  slice_map<std::string> m;
  CHECK(m.empty());
  CHECK(m.find(3) == m.end());
  CHECK(m.count(1000) == 0);
  CHECK(m.erase(7) == 0);

  m[5] = "five";
  auto& five = m[5];
  CHECK(m.try_emplace(5, "other").second == false);
  CHECK(m.emplace(900, std::string{"nine hundred"}).second);
  m[2] = "two";
  // References survive inserting beyond every earlier slice.
  CHECK(&five == &m.find(5)->second);
  CHECK(five == "five");
  CHECK(m.size() == 3);
  CHECK(m.count(900) == 1);
  CHECK(m[901].empty()); // made, value-initialised
  CHECK(m.size() == 4);

  std::vector<uint32_t> order;
  for (auto& [slice, text] : m) {
    order.push_back(slice);
    CHECK((!text.empty() || slice == 901));
  }
  CHECK(order == std::vector<uint32_t>{2, 5, 900, 901});

  // Erasing while iterating, as the shard drops streams.
  for (auto i = m.begin(); i != m.end();)
    i = i->first % 2 == 0 ? m.erase(i) : std::next(i);
  order.clear();
  const auto& cm = m;
  for (const auto& entry : cm)
    order.push_back(entry.first);
  CHECK(order == std::vector<uint32_t>{5, 901});
  CHECK(m.size() == 2);
  CHECK(cm.find(2) == cm.end());

  m.clear();
  CHECK(m.empty());
  CHECK(m.begin() == m.end());
}

TEST_CASE("slice_map holds move-only values", "[slice_map]") {
  slice_map<std::unique_ptr<int>> m;
  m[3] = std::make_unique<int>(3);
  m.emplace(1, std::make_unique<int>(1));
  int sum = 0;
  for (auto& [slice, p] : m)
    sum += static_cast<int>(slice) * *p;
  CHECK(sum == 10);
  CHECK(m.erase(3) == 1);
  CHECK(m.size() == 1);
}
