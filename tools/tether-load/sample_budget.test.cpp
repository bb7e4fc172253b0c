#include "tether-load/sample_budget.hpp"

#include <catch2/catch.hpp>

#include <thread>
#include <vector>

using tether::tools::load::sample_budget;

TEST_CASE("sample_budget: unlimited, exact and partial grants") {
  sample_budget unlimited{0};
  CHECK(unlimited.reserve(1000) == 1000);
  CHECK_FALSE(unlimited.exhausted());
  sample_budget budget{2500};
  CHECK(budget.reserve(1000) == 1000);
  CHECK(budget.reserve(1000) == 1000);
  CHECK(budget.reserve(1000) == 500);
  CHECK(budget.exhausted());
  CHECK(budget.reserve(1000) == 0);
}

TEST_CASE("sample_budget: concurrent grants never exceed the total") {
  sample_budget budget{1'000'003};
  std::vector<std::uint64_t> granted(4, 0);
  std::vector<std::thread> threads;
  for (size_t t = 0; t < granted.size(); ++t)
    threads.emplace_back([&budget, &granted, t] {
      while (auto n = budget.reserve(7))
        granted[t] += n;
    });
  for (auto& thread : threads)
    thread.join();
  std::uint64_t total = 0;
  for (auto g : granted)
    total += g;
  CHECK(total == 1'000'003);
}
