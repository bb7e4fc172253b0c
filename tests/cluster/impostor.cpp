// A cluster member that lies about who it is: it holds a certificate of the
// cluster's own CA for one name (say tether-4) and speaks for another member (say
// tether-2), as a node whose binary was changed, or whose key was stolen, would.
// tests/cluster/tls_test.py runs it against a TLS cluster; every claim must be
// refused (docs/security.md, "What identity is checked").
//
//   tether_impostor --openssl.certificate=tether-4.crt --openssl.key=tether-4.key
//     --openssl.cafile=ca.crt --impostor.me=tether-4 --impostor.claim=tether-2
//     --impostor.reporters='["tether-1","tether-2"]' --impostor.suspect=tether-3
//     --impostor.targets='["127.0.0.1:7001", ...]'
//
// For each target it prints one line per attempt, `hello as NAME: accepted|refused
// (...)` and `join as NAME: ...`, then sends suspicions of `suspect` in the names of
// `reporters` to every controller for `suspect-seconds`. Exit status 0 when it ran
// (whatever the answers), 2 on bad options or when no target answered.

#include <chrono>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scoped_actor.hpp>

#include <tether/tether.hpp>

#include "directory/controller.hpp"
#include "node/peer_identity.hpp"
#include "node/tls_transport.hpp"
#include "supervision/supervisor.hpp"

using namespace std::chrono_literals;
namespace sup = tether::supervision;
namespace dir = tether::directory;

namespace {

struct impostor_config : caf::actor_system_config {
  std::string me = "tether-4";
  std::string claim = "tether-2";
  std::vector<std::string> reporters;
  std::string suspect;
  std::vector<std::string> targets;
  int suspect_seconds = 3;

  impostor_config() {
    tether::configure(*this);
    opt_group{custom_options_, "impostor"}
      .add(me, "me", "the name the certificate carries")
      .add(claim, "claim", "the member to speak for")
      .add(reporters, "reporters", "members to send suspicions in the name of")
      .add(suspect, "suspect", "the member to accuse")
      .add(targets, "targets", "cluster addresses HOST:PORT to contact")
      .add(suspect_seconds, "suspect-seconds", "how long to keep accusing");
  }
};

/// An actor that swallows everything: the handles a hello must carry.
caf::behavior sink(caf::event_based_actor* self) {
  self->set_default_handler(caf::drop);
  return {[](int) {}};
}

sup::peer_info info_as(const std::string& name, const caf::actor& handle) {
  sup::peer_info info;
  info.name = name;
  info.gateway = "127.0.0.1:1";
  info.incarnation = static_cast<uint64_t>(
    std::chrono::duration_cast<std::chrono::microseconds>(
      std::chrono::system_clock::now().time_since_epoch())
      .count());
  info.supervisor = handle;
  return info;
}

} // namespace

int main(int argc, char** argv) {
  impostor_config cfg;
  if (auto err = cfg.parse(argc, argv)) {
    std::cerr << "bad options: " << to_string(err) << "\n";
    return 2;
  }
  caf::actor_system sys{cfg};
  auto mm = tether::internal::spawn_tls_middleman(
    sys, "impostor", std::make_shared<tether::internal::peer_registry>());
  auto fake = sys.spawn(sink);
  caf::scoped_actor self{sys};
  std::vector<dir::controller_actor> controllers;
  for (auto& target : cfg.targets) {
    auto colon = target.rfind(':');
    auto host = target.substr(0, colon);
    auto port = static_cast<uint16_t>(std::stoi(target.substr(colon + 1)));
    sup::supervisor_actor peer;
    // A loaded machine may time out a connection's handshakes: try a few times
    // before reporting it (the checks need every target's answers).
    for (int attempt = 1; attempt <= 4 && !peer; ++attempt)
      self->request(mm, 30s, caf::connect_atom::value, host, port)
        .receive(
          [&](const caf::node_id&, caf::strong_actor_ptr& ptr,
              const std::set<std::string>&) {
            peer = caf::actor_cast<sup::supervisor_actor>(ptr);
          },
          [&](caf::error& e) {
            std::cout << target << ": cannot connect (attempt " << attempt
                      << "): " << sys.render(e) << std::endl;
          });
    if (!peer)
      continue;
    auto hello = [&](const std::string& name) {
      dir::controller_actor ctl;
      self->request(peer, 10s, sup::hello_atom::value, info_as(name, fake))
        .receive(
          [&](sup::peer_info& theirs, std::vector<std::string>&) {
            std::cout << target << ": hello as " << name << ": accepted by "
                      << theirs.name << std::endl;
            ctl = theirs.controller;
          },
          [&](caf::error& e) {
            std::cout << target << ": hello as " << name << ": refused ("
                      << sys.render(e) << ")" << std::endl;
          });
      return ctl;
    };
    hello(cfg.claim);
    // Its own name is the truth: that hello counts, and hands out the controller.
    auto ctl = hello(cfg.me);
    if (!ctl)
      continue;
    controllers.push_back(ctl);
    tether::member m{cfg.claim, "127.0.0.1:1", true, false, 1};
    self->request(ctl, 10s, dir::join_atom::value, m)
      .receive(
        [&](uint64_t v) {
          std::cout << target << ": join as " << cfg.claim << ": accepted (table "
                    << v << ")" << std::endl;
        },
        [&](caf::error& e) {
          std::cout << target << ": join as " << cfg.claim << ": refused ("
                    << sys.render(e) << ")" << std::endl;
        });
  }
  if (controllers.empty()) {
    std::cout << "no target answered" << std::endl;
    caf::anon_send_exit(mm, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(fake, caf::exit_reason::user_shutdown);
    return 2;
  }
  // Suspicions in other members' names, renewed faster than they expire.
  if (!cfg.suspect.empty()) {
    auto until = std::chrono::steady_clock::now() + std::chrono::seconds(cfg.suspect_seconds);
    while (std::chrono::steady_clock::now() < until) {
      for (auto& ctl : controllers)
        for (auto& r : cfg.reporters)
          self->send(ctl, dir::suspect_atom::value, r, std::vector<std::string>{cfg.suspect});
      std::this_thread::sleep_for(100ms);
    }
    std::cout << "accused " << cfg.suspect << " for " << cfg.suspect_seconds << " s"
              << std::endl;
  }
  caf::anon_send_exit(mm, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(fake, caf::exit_reason::user_shutdown);
  return 0;
}
