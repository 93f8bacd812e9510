// Tests for RFC 7692 negotiation and the per-message compressor/decompressor.

#include "wirehub/permessage_deflate.hpp"

#include <gtest/gtest.h>
#include <malloc.h>
#include <zlib.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

namespace {

using wirehub::deflate_config;
using wirehub::deflate_params;
using wirehub::deflater;
using wirehub::inflater;
using result = wirehub::inflater::result;

deflate_config enabled_config() {
  deflate_config c;
  c.enabled = true;
  return c;
}

const std::uint8_t* bytes(const std::string& s) { return reinterpret_cast<const std::uint8_t*>(s.data()); }

std::string from_hex(std::initializer_list<int> v) {
  std::string s;
  for (int b : v) s.push_back(static_cast<char>(b));
  return s;
}

// Text-like data (compressible, with matches at many distances) or noise.
std::string make_data(std::size_t n, std::uint32_t seed, bool noise = false) {
  std::mt19937 rng(seed);
  std::string s;
  s.reserve(n);
  if (noise) {
    while (s.size() < n) s.push_back(static_cast<char>(rng() & 0xff));
    return s;
  }
  static const char* words[] = {"alpha", "beta", "gamma", "delta", "wirehub", "socket", "frame",
                                "{\"id\":", "\"value\":", "null", "true", "false", ", ", "\n"};
  while (s.size() < n) {
    if (rng() % 8 == 0) {
      s += std::to_string(rng() % 100000);
    } else {
      s += words[rng() % (sizeof words / sizeof words[0])];
    }
    s.push_back(' ');
  }
  s.resize(n);
  return s;
}

// Inflates one message, cutting the payload into frames at random points.
result inflate_message(inflater& inf, const std::string& payload, std::string& out, std::size_t max_size,
                       std::mt19937& rng) {
  std::size_t pos = 0;
  while (pos < payload.size()) {
    std::size_t n = std::min<std::size_t>(payload.size() - pos, 1 + rng() % (payload.size() / 3 + 1));
    result r = inf.feed(bytes(payload) + pos, n, out, max_size);
    if (r != result::ok) return r;
    pos += n;
  }
  return inf.finish(out, max_size);
}

// ------------------------------------------------------------------ server

struct server_case {
  const char* offers;
  const char* response;  // nullptr: declined
};

void expect_server(const deflate_config& cfg, const std::vector<server_case>& cases) {
  for (const auto& c : cases) {
    SCOPED_TRACE(c.offers);
    deflate_params p;
    std::string response = "garbage";
    bool ok = wirehub::pmd_negotiate_server(c.offers, cfg, p, response);
    if (c.response == nullptr) {
      EXPECT_FALSE(ok);
      EXPECT_EQ(response, "");
    } else {
      EXPECT_TRUE(ok);
      EXPECT_EQ(response, c.response);
    }
  }
}

TEST(PermessageDeflate, ServerAcceptsValidOffersAndHonoursTheirParameters) {
  expect_server(enabled_config(), {
      {"permessage-deflate", "permessage-deflate; server_no_context_takeover"},
      {"permessage-deflate; client_max_window_bits", "permessage-deflate; server_no_context_takeover"},
      {"permessage-deflate; server_max_window_bits=10",
       "permessage-deflate; server_no_context_takeover; server_max_window_bits=10"},
      {"permessage-deflate; server_max_window_bits=8",
       "permessage-deflate; server_no_context_takeover; server_max_window_bits=8"},
      {"permessage-deflate; client_max_window_bits=10",
       "permessage-deflate; server_no_context_takeover; client_max_window_bits=10"},
      {"permessage-deflate; client_max_window_bits=8",
       "permessage-deflate; server_no_context_takeover; client_max_window_bits=8"},
      {"permessage-deflate; client_no_context_takeover",
       "permessage-deflate; server_no_context_takeover; client_no_context_takeover"},
      {"permessage-deflate; server_no_context_takeover", "permessage-deflate; server_no_context_takeover"},
      {"permessage-deflate; server_max_window_bits=\"10\"",
       "permessage-deflate; server_no_context_takeover; server_max_window_bits=10"},
      {"permessage-deflate; server_max_window_bits=\"1\\0\"",
       "permessage-deflate; server_no_context_takeover; server_max_window_bits=10"},
      {"permessage-deflate; server_max_window_bits=012",
       "permessage-deflate; server_no_context_takeover; server_max_window_bits=12"},
      {"  permessage-deflate ;\tclient_max_window_bits ; server_max_window_bits = 12  ",
       "permessage-deflate; server_no_context_takeover; server_max_window_bits=12"},
      {", ,permessage-deflate,, ", "permessage-deflate; server_no_context_takeover"},
      {"PerMessage-Deflate", "permessage-deflate; server_no_context_takeover"},
  });
}

TEST(PermessageDeflate, ServerSkipsOtherExtensionsAndUnacceptableOffersThenTakesTheFirstGoodOne) {
  expect_server(enabled_config(), {
      {"x-webkit-deflate-frame, permessage-deflate", "permessage-deflate; server_no_context_takeover"},
      {"foo; bar=1, permessage-deflate; client_max_window_bits=9",
       "permessage-deflate; server_no_context_takeover; client_max_window_bits=9"},
      {"permessage-deflate; foo=1, permessage-deflate", "permessage-deflate; server_no_context_takeover"},
      {"permessage-deflate; server_max_window_bits=7, permessage-deflate; server_max_window_bits=9",
       "permessage-deflate; server_no_context_takeover; server_max_window_bits=9"},
      {"permessage-deflate; server_max_window_bits=10, permessage-deflate",
       "permessage-deflate; server_no_context_takeover; server_max_window_bits=10"},
  });
}

TEST(PermessageDeflate, ServerDeclinesOffersWithBadDuplicateOrUnknownParameters) {
  expect_server(enabled_config(), {
      {"", nullptr},
      {"x-webkit-deflate-frame", nullptr},
      {"permessage-deflate; server_max_window_bits", nullptr},
      {"permessage-deflate; server_max_window_bits=7", nullptr},
      {"permessage-deflate; server_max_window_bits=16", nullptr},
      {"permessage-deflate; server_max_window_bits=99999999999999999999", nullptr},
      {"permessage-deflate; server_max_window_bits=-9", nullptr},
      {"permessage-deflate; server_max_window_bits=9a", nullptr},
      {"permessage-deflate; server_max_window_bits=\"\"", nullptr},
      {"permessage-deflate; client_max_window_bits=abc", nullptr},
      {"permessage-deflate; client_max_window_bits=16", nullptr},
      {"permessage-deflate; server_no_context_takeover=1", nullptr},
      {"permessage-deflate; client_no_context_takeover=\"x\"", nullptr},
      {"permessage-deflate; client_no_context_takeover; client_no_context_takeover", nullptr},
      {"permessage-deflate; server_no_context_takeover; server_no_context_takeover", nullptr},
      {"permessage-deflate; server_max_window_bits=10; server_max_window_bits=11", nullptr},
      {"permessage-deflate; client_max_window_bits; client_max_window_bits=10", nullptr},
      {"permessage-deflate; foo", nullptr},
      {"permessage-deflate; mux", nullptr},
  });
}

TEST(PermessageDeflate, ServerTreatsMalformedHeadersAsNoOffer) {
  expect_server(enabled_config(), {
      {"permessage-deflate; =", nullptr},
      {"permessage-deflate;", nullptr},
      {"permessage-deflate; server_max_window_bits=", nullptr},
      {"permessage-deflate; server_max_window_bits=\"10", nullptr},
      {"permessage-deflate server_no_context_takeover", nullptr},
      {"permessage-deflate; a b", nullptr},
      {"permessage-deflate; server_max_window_bits=\"1 0\"", nullptr},
      {"\"permessage-deflate\"", nullptr},
  });
}

TEST(PermessageDeflate, ServerWithContextTakeoverAnswersOnlyWhatWasAsked) {
  deflate_config cfg = enabled_config();
  cfg.server_no_context_takeover = false;
  expect_server(cfg, {
      {"permessage-deflate", "permessage-deflate"},
      {"permessage-deflate; server_no_context_takeover", "permessage-deflate; server_no_context_takeover"},
      {"permessage-deflate; client_max_window_bits", "permessage-deflate"},
  });
  deflate_params p;
  std::string r;
  ASSERT_TRUE(wirehub::pmd_negotiate_server("permessage-deflate", cfg, p, r));
  EXPECT_FALSE(p.server_no_context_takeover);
  EXPECT_FALSE(p.client_no_context_takeover);
  EXPECT_EQ(p.server_max_window_bits, 15);
  EXPECT_EQ(p.client_max_window_bits, 15);
}

TEST(PermessageDeflate, ServerWindowIsTheSmallerOfOfferAndConfigButNeverChosenAsEight) {
  deflate_config cfg = enabled_config();
  cfg.server_no_context_takeover = false;
  cfg.server_max_window_bits = 10;
  expect_server(cfg, {
      {"permessage-deflate", "permessage-deflate; server_max_window_bits=10"},
      {"permessage-deflate; server_max_window_bits=12", "permessage-deflate; server_max_window_bits=10"},
      {"permessage-deflate; server_max_window_bits=9", "permessage-deflate; server_max_window_bits=9"},
  });
  cfg.server_max_window_bits = 8;
  expect_server(cfg, {
      {"permessage-deflate", "permessage-deflate; server_max_window_bits=9"},
      {"permessage-deflate; server_max_window_bits=12", "permessage-deflate; server_max_window_bits=9"},
      // The client insists on 8: accepted (zlib's 9-bit compressor stays within 250 bytes).
      {"permessage-deflate; server_max_window_bits=8", "permessage-deflate; server_max_window_bits=8"},
  });
  deflate_params p;
  std::string r;
  ASSERT_TRUE(wirehub::pmd_negotiate_server("permessage-deflate; server_max_window_bits=8", cfg, p, r));
  EXPECT_EQ(p.server_max_window_bits, 8);
}

TEST(PermessageDeflate, ServerLimitsTheClientWindowOnlyWhenTheClientOfferedIt) {
  deflate_config cfg = enabled_config();
  cfg.server_no_context_takeover = false;
  cfg.client_max_window_bits = 10;
  expect_server(cfg, {
      {"permessage-deflate", "permessage-deflate"},
      {"permessage-deflate; client_max_window_bits", "permessage-deflate; client_max_window_bits=10"},
      {"permessage-deflate; client_max_window_bits=12", "permessage-deflate; client_max_window_bits=10"},
      {"permessage-deflate; client_max_window_bits=9", "permessage-deflate; client_max_window_bits=9"},
  });
  deflate_params p;
  std::string r;
  ASSERT_TRUE(wirehub::pmd_negotiate_server("permessage-deflate", cfg, p, r));
  EXPECT_EQ(p.client_max_window_bits, 15);
  ASSERT_TRUE(wirehub::pmd_negotiate_server("permessage-deflate; client_max_window_bits=9", cfg, p, r));
  EXPECT_EQ(p.client_max_window_bits, 9);

  cfg.client_max_window_bits = 8;
  expect_server(cfg, {
      {"permessage-deflate; client_max_window_bits", "permessage-deflate; client_max_window_bits=9"},
      {"permessage-deflate; client_max_window_bits=8", "permessage-deflate; client_max_window_bits=8"},
  });
}

TEST(PermessageDeflate, ServerDemandsClientNoContextTakeoverWhenConfigured) {
  deflate_config cfg = enabled_config();
  cfg.client_no_context_takeover = true;
  expect_server(cfg, {
      {"permessage-deflate", "permessage-deflate; server_no_context_takeover; client_no_context_takeover"},
  });
  deflate_params p;
  std::string r;
  ASSERT_TRUE(wirehub::pmd_negotiate_server("permessage-deflate", cfg, p, r));
  EXPECT_TRUE(p.server_no_context_takeover);
  EXPECT_TRUE(p.client_no_context_takeover);
}

TEST(PermessageDeflate, ServerTreatsOutOfRangeConfigWindowAsFifteen) {
  deflate_config cfg = enabled_config();
  cfg.server_no_context_takeover = false;
  cfg.server_max_window_bits = 0;
  cfg.client_max_window_bits = 42;
  expect_server(cfg, {
      {"permessage-deflate; client_max_window_bits", "permessage-deflate"},
      {"permessage-deflate; server_max_window_bits=11", "permessage-deflate; server_max_window_bits=11"},
  });
}

// ------------------------------------------------------------------ client

TEST(PermessageDeflate, ClientOfferFollowsTheConfig) {
  deflate_config cfg = enabled_config();
  EXPECT_EQ(wirehub::pmd_client_offer(cfg), "permessage-deflate; client_max_window_bits");
  cfg.client_no_context_takeover = true;
  EXPECT_EQ(wirehub::pmd_client_offer(cfg), "permessage-deflate; client_no_context_takeover; client_max_window_bits");
  cfg = enabled_config();
  cfg.server_max_window_bits = 10;
  EXPECT_EQ(wirehub::pmd_client_offer(cfg), "permessage-deflate; server_max_window_bits=10; client_max_window_bits");
  cfg = enabled_config();
  cfg.client_max_window_bits = 11;
  EXPECT_EQ(wirehub::pmd_client_offer(cfg), "permessage-deflate; client_max_window_bits=11");
  cfg.server_max_window_bits = 8;
  cfg.client_max_window_bits = 8;
  EXPECT_EQ(wirehub::pmd_client_offer(cfg), "permessage-deflate; server_max_window_bits=8; client_max_window_bits=8");
}

// ws's PerMessageDeflate#offer, word for word: what is configured is offered
// (15 included), in ws's order, and client_max_window_bits can be left out.
TEST(PermessageDeflate, ClientOfferIsWordedAsWsWordsIt) {
  deflate_config cfg = enabled_config();
  cfg.server_max_window_bits = 15;
  EXPECT_EQ(wirehub::pmd_client_offer(cfg), "permessage-deflate; server_max_window_bits=15; client_max_window_bits");
  cfg = enabled_config();
  cfg.client_max_window_bits = 15;
  EXPECT_EQ(wirehub::pmd_client_offer(cfg), "permessage-deflate; client_max_window_bits=15");
  cfg = enabled_config();
  cfg.request_server_no_context_takeover = true;
  EXPECT_EQ(wirehub::pmd_client_offer(cfg), "permessage-deflate; server_no_context_takeover; client_max_window_bits");
  cfg = enabled_config();
  cfg.client_max_window_bits = wirehub::kNoClientWindowBits;
  EXPECT_EQ(wirehub::pmd_client_offer(cfg), "permessage-deflate");
  cfg.request_server_no_context_takeover = true;
  cfg.client_no_context_takeover = true;
  cfg.server_max_window_bits = 10;
  cfg.client_max_window_bits = 12;
  EXPECT_EQ(wirehub::pmd_client_offer(cfg),
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
            "server_max_window_bits=10; client_max_window_bits=12");
}

struct client_case {
  const char* answer;
  bool ok;
  deflate_params expect;
};

void expect_client(const deflate_config& cfg, const std::vector<client_case>& cases) {
  for (const auto& c : cases) {
    SCOPED_TRACE(c.answer);
    deflate_params p;
    std::string error;
    bool ok = wirehub::pmd_client_accept(c.answer, cfg, p, error);
    EXPECT_EQ(ok, c.ok) << error;
    if (ok && c.ok) {
      EXPECT_TRUE(error.empty());
      EXPECT_EQ(p.server_no_context_takeover, c.expect.server_no_context_takeover);
      EXPECT_EQ(p.client_no_context_takeover, c.expect.client_no_context_takeover);
      EXPECT_EQ(p.server_max_window_bits, c.expect.server_max_window_bits);
      EXPECT_EQ(p.client_max_window_bits, c.expect.client_max_window_bits);
    }
    if (!ok) {
      EXPECT_FALSE(error.empty());
    }
  }
}

deflate_params params(bool snct, bool cnct, int sbits, int cbits) {
  deflate_params p;
  p.server_no_context_takeover = snct;
  p.client_no_context_takeover = cnct;
  p.server_max_window_bits = sbits;
  p.client_max_window_bits = cbits;
  return p;
}

TEST(PermessageDeflate, ClientAcceptsEveryAnswerTheRfcAllowsForTheDefaultOffer) {
  expect_client(enabled_config(), {
      {"permessage-deflate", true, params(false, false, 15, 15)},
      {"permessage-deflate; server_no_context_takeover", true, params(true, false, 15, 15)},
      {"permessage-deflate; client_no_context_takeover", true, params(false, true, 15, 15)},
      {"permessage-deflate; server_max_window_bits=8", true, params(false, false, 8, 15)},
      {"permessage-deflate; server_max_window_bits=15", true, params(false, false, 15, 15)},
      {"permessage-deflate; client_max_window_bits=8", true, params(false, false, 15, 8)},
      {"permessage-deflate; client_max_window_bits=15", true, params(false, false, 15, 15)},
      {"permessage-deflate; client_max_window_bits=\"12\"", true, params(false, false, 15, 12)},
      // The answers of the Autobahn fuzzingserver, cases 13.1 to 13.7.
      {"permessage-deflate; client_no_context_takeover; client_max_window_bits=8", true,
       params(false, true, 15, 8)},
      {"permessage-deflate; client_no_context_takeover; client_max_window_bits=15", true,
       params(false, true, 15, 15)},
      {"permessage-deflate; server_no_context_takeover; server_max_window_bits=9; "
       "client_no_context_takeover; client_max_window_bits=9",
       true, params(true, true, 9, 9)},
      {" permessage-deflate ; server_no_context_takeover ", true, params(true, false, 15, 15)},
  });
}

TEST(PermessageDeflate, ClientRejectsAnswersItCannotHaveAsked) {
  expect_client(enabled_config(), {
      {"", false, {}},
      {"x-webkit-deflate-frame", false, {}},
      {"permessage-deflate, x-webkit-deflate-frame", false, {}},
      {"permessage-deflate; foo", false, {}},
      {"permessage-deflate; client_max_window_bits", false, {}},
      {"permessage-deflate; server_max_window_bits", false, {}},
      {"permessage-deflate; server_max_window_bits=7", false, {}},
      {"permessage-deflate; client_max_window_bits=16", false, {}},
      {"permessage-deflate; server_no_context_takeover=1", false, {}},
      {"permessage-deflate; server_no_context_takeover; server_no_context_takeover", false, {}},
      {"permessage-deflate; client_max_window_bits=9; client_max_window_bits=9", false, {}},
      {"permessage-deflate; server_max_window_bits=\"9", false, {}},
      {"permessage-deflate;", false, {}},
  });
}

// As ws (PerMessageDeflate#accept): every answer must be well formed, the
// first one's parameters are used.
TEST(PermessageDeflate, ClientTakesTheFirstOfRepeatedAnswers) {
  expect_client(enabled_config(), {
      {"permessage-deflate, permessage-deflate", true, params(false, false, 15, 15)},
      {"permessage-deflate; server_no_context_takeover, permessage-deflate", true, params(true, false, 15, 15)},
      {"permessage-deflate, permessage-deflate; server_no_context_takeover", true, params(false, false, 15, 15)},
      {"permessage-deflate; client_max_window_bits=9, permessage-deflate; server_max_window_bits=10", true,
       params(false, false, 15, 9)},
      {"permessage-deflate, permessage-deflate; server_max_window_bits=20", false, {}},
      {"permessage-deflate, permessage-deflate; foo", false, {}},
      {"permessage-deflate, permessage-deflate; client_max_window_bits", false, {}},
      {"permessage-deflate, x-webkit-deflate-frame", false, {}},
  });
  deflate_config cfg = enabled_config();
  cfg.client_max_window_bits = wirehub::kNoClientWindowBits;
  // Only the first answer is held to the offer.
  expect_client(cfg, {
      {"permessage-deflate; client_max_window_bits=10", false, {}},
      {"permessage-deflate, permessage-deflate; client_max_window_bits=10", true, params(false, false, 15, 15)},
  });
}

TEST(PermessageDeflate, ClientHoldsTheServerToTheWindowsItOffered) {
  deflate_config cfg = enabled_config();
  cfg.server_max_window_bits = 10;
  cfg.client_max_window_bits = 11;
  expect_client(cfg, {
      {"permessage-deflate; server_max_window_bits=10", true, params(false, false, 10, 11)},
      {"permessage-deflate; server_max_window_bits=9", true, params(false, false, 9, 11)},
      {"permessage-deflate; server_max_window_bits=8; client_max_window_bits=8", true, params(false, false, 8, 8)},
      {"permessage-deflate; server_max_window_bits=10; client_max_window_bits=11", true,
       params(false, false, 10, 11)},
      {"permessage-deflate; server_max_window_bits=12", false, {}},
      {"permessage-deflate; server_max_window_bits=10; client_max_window_bits=12", false, {}},
      {"permessage-deflate", false, {}},
  });
}

TEST(PermessageDeflate, ClientKeepsItsOwnNoContextTakeoverWishEvenIfNotEchoed) {
  deflate_config cfg = enabled_config();
  cfg.client_no_context_takeover = true;
  expect_client(cfg, {{"permessage-deflate", true, params(false, true, 15, 15)}});
}

// ws_answer_rules (WH_CLIENT_WS_DEFLATE_ANSWER): the answer taken as ws 8's
// PerMessageDeflate#acceptAsClient takes it, so that the Node package
// connects wherever ws connects and then runs with the windows ws runs with.
TEST(PermessageDeflate, WsAnswerRulesTakeAServerWindowAboveTheOfferOrNoneAtAll) {
  deflate_config cfg = enabled_config();
  cfg.server_max_window_bits = 10;
  cfg.client_max_window_bits = 11;
  cfg.ws_answer_rules = true;
  expect_client(cfg, {
      // Inflated with the window answered: the server compresses with it.
      {"permessage-deflate; server_max_window_bits=12", true, params(false, false, 12, 11)},
      {"permessage-deflate; server_max_window_bits=15", true, params(false, false, 15, 11)},
      // Not answered: ws inflates with 15 bits.
      {"permessage-deflate", true, params(false, false, 15, 11)},
      {"permessage-deflate; server_max_window_bits=9", true, params(false, false, 9, 11)},
      // What ws refuses stays refused: a client window above the offer.
      {"permessage-deflate; server_max_window_bits=10; client_max_window_bits=12", false, {}},
      {"permessage-deflate; server_max_window_bits=20", false, {}},
  });
}

TEST(PermessageDeflate, WsAnswerRulesDropOurContextOnlyWhenTheAnswerSaysSo) {
  deflate_config cfg = enabled_config();
  cfg.client_no_context_takeover = true;
  cfg.ws_answer_rules = true;
  expect_client(cfg, {
      {"permessage-deflate", true, params(false, false, 15, 15)},
      {"permessage-deflate; client_no_context_takeover", true, params(false, true, 15, 15)},
  });
}

// ws's clientNoContextTakeover: false refuses the answer that asks for it.
TEST(PermessageDeflate, ClientRefusesClientNoContextTakeoverWhenConfiguredTo) {
  for (bool ws_rules : {false, true}) {
    deflate_config cfg = enabled_config();
    cfg.refuse_client_no_context_takeover = true;
    cfg.ws_answer_rules = ws_rules;
    expect_client(cfg, {
        {"permessage-deflate; client_no_context_takeover", false, {}},
        {"permessage-deflate; server_no_context_takeover; client_no_context_takeover", false, {}},
        {"permessage-deflate; server_no_context_takeover", true, params(true, false, 15, 15)},
    });
  }
}

// Without the rules, the RFC's (the default for every binding but Node's).
TEST(PermessageDeflate, ByDefaultTheClientHoldsTheServerToTheRfc) {
  deflate_config cfg = enabled_config();
  cfg.server_max_window_bits = 10;
  EXPECT_FALSE(cfg.ws_answer_rules);
  EXPECT_FALSE(cfg.refuse_client_no_context_takeover);
  expect_client(cfg, {
      {"permessage-deflate; server_max_window_bits=12", false, {}},
      {"permessage-deflate", false, {}},
      {"permessage-deflate; server_max_window_bits=10; client_no_context_takeover", true,
       params(false, true, 10, 15)},
  });
}

TEST(PermessageDeflate, ClientAndServerAgreeOnTheSameParameters) {
  for (int sbits : {8, 9, 12, 15}) {
    for (int cbits : {8, 10, 15}) {
      for (int flags = 0; flags < 8; ++flags) {
        deflate_config server = enabled_config();
        deflate_config client = enabled_config();
        server.server_no_context_takeover = flags & 1;
        server.client_no_context_takeover = flags & 2;
        client.client_no_context_takeover = flags & 4;
        client.server_max_window_bits = sbits;
        client.client_max_window_bits = cbits;
        server.server_max_window_bits = 24 - sbits;
        server.client_max_window_bits = 23 - cbits;
        SCOPED_TRACE(wirehub::pmd_client_offer(client));

        deflate_params sp, cp;
        std::string response, error;
        ASSERT_TRUE(wirehub::pmd_negotiate_server(wirehub::pmd_client_offer(client), server, sp, response));
        ASSERT_TRUE(wirehub::pmd_client_accept(response, client, cp, error)) << response << ": " << error;
        EXPECT_EQ(sp.server_no_context_takeover, cp.server_no_context_takeover);
        EXPECT_EQ(sp.client_no_context_takeover, cp.client_no_context_takeover);
        EXPECT_EQ(sp.server_max_window_bits, cp.server_max_window_bits);
        EXPECT_EQ(sp.client_max_window_bits, cp.client_max_window_bits);
        EXPECT_LE(cp.server_max_window_bits, std::max(sbits, 9));
        EXPECT_LE(cp.client_max_window_bits, std::max(cbits, 9));
      }
    }
  }
}

// ------------------------------------------------- ws's server answer
// ws_answer_rules on a server (WH_SERVER_WS_DEFLATE_ANSWER): the offer
// chosen and the answer worded as ws 8's PerMessageDeflate#acceptAsServer and
// extension.format do, byte for byte.

#include "ws_deflate_answers.inc"

// ws's options in wh_deflate_options' terms (1 true, 0 left out, -1 false,
// 8..15 a number), turned into a config as hub.cpp does.
deflate_config ws_server_config(int snct, int cnct, int sbits, int cbits) {
  deflate_config c = enabled_config();
  c.ws_answer_rules = true;
  c.server_no_context_takeover = snct > 0;
  c.refuse_server_no_context_takeover = snct < 0;
  c.client_no_context_takeover = cnct > 0;
  c.server_max_window_bits = sbits == -1 ? wirehub::kNoServerWindowBits : sbits;
  c.client_max_window_bits = cbits == -1 ? wirehub::kNoClientWindowBits : cbits;
  return c;
}

deflate_config ws_server_config() { return ws_server_config(0, 0, 0, 0); }

std::string show(const deflate_params& p) {
  return std::string(p.server_no_context_takeover ? "server_no_context_takeover " : "") +
         (p.client_no_context_takeover ? "client_no_context_takeover " : "") + "server " +
         std::to_string(p.server_max_window_bits) + " client " + std::to_string(p.client_max_window_bits);
}

// What an answer tells each side to use: the value answered, else 15.
deflate_params params_of(const std::string& answer) {
  deflate_params p;
  p.server_no_context_takeover = answer.find("server_no_context_takeover") != std::string::npos;
  p.client_no_context_takeover = answer.find("client_no_context_takeover") != std::string::npos;
  auto bits = [&](const char* name) {
    const std::size_t at = answer.find(name);
    return at == std::string::npos ? 15 : std::stoi(answer.substr(at + std::strlen(name) + 1));
  };
  p.server_max_window_bits = bits("server_max_window_bits");
  p.client_max_window_bits = bits("client_max_window_bits");
  return p;
}

void expect_ws_server(const deflate_config& cfg, const std::vector<server_case>& cases) {
  expect_server(cfg, cases);
  // The windows and context rules used are the answer's.
  for (const auto& c : cases) {
    if (c.response == nullptr) continue;
    SCOPED_TRACE(c.offers);
    deflate_params p;
    std::string response;
    ASSERT_TRUE(wirehub::pmd_negotiate_server(c.offers, cfg, p, response));
    EXPECT_EQ(show(p), show(params_of(c.response)));
  }
}

TEST(PermessageDeflate, WsServerAnswersAsWsUnderEveryOption) {
  constexpr std::size_t offers = sizeof kWsOffers / sizeof kWsOffers[0];
  std::size_t checked = 0;
  for (const ws_answer_row& row : kWsAnswerRows) {
    const deflate_config cfg = ws_server_config(row.snct, row.cnct, row.sbits, row.cbits);
    for (std::size_t i = 0; i < offers; ++i) {
      SCOPED_TRACE(testing::Message() << "options " << row.snct << "/" << row.cnct << "/" << row.sbits << "/"
                                      << row.cbits << ", offer " << kWsOffers[i]);
      deflate_params p;
      std::string response = "garbage";
      const bool ok = wirehub::pmd_negotiate_server(kWsOffers[i], cfg, p, response);
      if (row.answer[i] < 0) {
        EXPECT_FALSE(ok);
        EXPECT_EQ(response, "");
      } else {
        EXPECT_TRUE(ok);
        EXPECT_EQ(response, kWsAnswers[row.answer[i]]);
        EXPECT_EQ(show(p), show(params_of(kWsAnswers[row.answer[i]])));
      }
      ++checked;
    }
  }
  EXPECT_EQ(checked, 225u * offers);
}

TEST(PermessageDeflate, WsServerKeepsTheOffersOrderThenAppendsItsOwn) {
  expect_ws_server(ws_server_config(), {
      {"permessage-deflate; client_no_context_takeover; server_no_context_takeover; client_max_window_bits; "
       "server_max_window_bits=9",
       "permessage-deflate; client_no_context_takeover; server_no_context_takeover; server_max_window_bits=9"},
      {"permessage-deflate; client_max_window_bits=12; server_max_window_bits=12; client_no_context_takeover",
       "permessage-deflate; client_max_window_bits=12; server_max_window_bits=12; client_no_context_takeover"},
  });
  expect_ws_server(ws_server_config(1, 0, 0, 0), {
      {"permessage-deflate; server_max_window_bits=10",
       "permessage-deflate; server_max_window_bits=10; server_no_context_takeover"},
      {"permessage-deflate; server_no_context_takeover; server_max_window_bits=10",
       "permessage-deflate; server_no_context_takeover; server_max_window_bits=10"},
  });
  // Ours in ws's order: server_no_context_takeover, client_no_context_takeover,
  // server_max_window_bits, client_max_window_bits; an offered one keeps its place.
  expect_ws_server(ws_server_config(1, 1, 12, 11), {
      {"permessage-deflate; client_max_window_bits",
       "permessage-deflate; client_max_window_bits=11; server_no_context_takeover; client_no_context_takeover; "
       "server_max_window_bits=12"},
      {"permessage-deflate; server_max_window_bits=13; client_max_window_bits=9; client_no_context_takeover",
       "permessage-deflate; server_max_window_bits=12; client_max_window_bits=11; client_no_context_takeover; "
       "server_no_context_takeover"},
  });
}

TEST(PermessageDeflate, WsServerDefaultsAnswerWhatWasOfferedAndNothingMore) {
  expect_ws_server(ws_server_config(), {
      {"permessage-deflate", "permessage-deflate"},
      // Valueless: ws leaves it out (the client may then use 15 bits).
      {"permessage-deflate; client_max_window_bits", "permessage-deflate"},
      {"permessage-deflate; client_max_window_bits=10", "permessage-deflate; client_max_window_bits=10"},
      {"permessage-deflate; client_max_window_bits=8", "permessage-deflate; client_max_window_bits=8"},
      {"permessage-deflate; server_max_window_bits=8", "permessage-deflate; server_max_window_bits=8"},
      {"permessage-deflate; server_no_context_takeover", "permessage-deflate; server_no_context_takeover"},
      {"permessage-deflate; client_no_context_takeover", "permessage-deflate; client_no_context_takeover"},
      {"x-webkit-deflate-frame, permessage-deflate; client_max_window_bits=9",
       "permessage-deflate; client_max_window_bits=9"},
  });
  // The RFC 7692 default (every binding but Node's) adds server_no_context_takeover.
  expect_server(enabled_config(), {{"permessage-deflate", "permessage-deflate; server_no_context_takeover"}});
}

TEST(PermessageDeflate, WsServerRefusesOffersOfASmallerServerWindowAndTakesTheNext) {
  expect_ws_server(ws_server_config(0, 0, 12, 0), {
      {"permessage-deflate; server_max_window_bits=9, permessage-deflate",
       "permessage-deflate; server_max_window_bits=12"},
      {"permessage-deflate; server_max_window_bits=13", "permessage-deflate; server_max_window_bits=12"},
      {"permessage-deflate; server_max_window_bits=12", "permessage-deflate; server_max_window_bits=12"},
      {"permessage-deflate; server_max_window_bits=9, permessage-deflate; server_max_window_bits=12; "
       "client_max_window_bits",
       "permessage-deflate; server_max_window_bits=12"},
      {"permessage-deflate; server_max_window_bits=11", nullptr},
      {"permessage-deflate; server_max_window_bits=8, permessage-deflate; server_max_window_bits=11", nullptr},
  });
  // serverMaxWindowBits: false refuses any offer that names a server window.
  expect_ws_server(ws_server_config(0, 0, -1, 0), {
      {"permessage-deflate; server_max_window_bits=15", nullptr},
      {"permessage-deflate; server_max_window_bits=10, permessage-deflate", "permessage-deflate"},
  });
}

TEST(PermessageDeflate, WsServerAnswersItsClientWindowEvenAboveTheOffer) {
  expect_ws_server(ws_server_config(0, 0, 0, 11), {
      {"permessage-deflate; client_max_window_bits=10", "permessage-deflate; client_max_window_bits=11"},
      {"permessage-deflate; client_max_window_bits=12", "permessage-deflate; client_max_window_bits=11"},
      {"permessage-deflate; client_max_window_bits", "permessage-deflate; client_max_window_bits=11"},
      // No client window offered: ws refuses the offer.
      {"permessage-deflate", nullptr},
      {"permessage-deflate, permessage-deflate; client_max_window_bits",
       "permessage-deflate; client_max_window_bits=11"},
  });
  // clientMaxWindowBits: false leaves it out of the answer.
  expect_ws_server(ws_server_config(0, 0, 0, -1), {
      {"permessage-deflate; client_max_window_bits=10", "permessage-deflate"},
      {"permessage-deflate; client_max_window_bits", "permessage-deflate"},
      {"permessage-deflate; server_max_window_bits=10; client_max_window_bits=9",
       "permessage-deflate; server_max_window_bits=10"},
  });
}

TEST(PermessageDeflate, WsServerNoContextTakeoverFalseRefusesOffersAskingForIt) {
  expect_ws_server(ws_server_config(-1, 0, 0, 0), {
      {"permessage-deflate; server_no_context_takeover", nullptr},
      {"permessage-deflate; server_no_context_takeover, permessage-deflate; client_max_window_bits",
       "permessage-deflate"},
      {"permessage-deflate; client_no_context_takeover", "permessage-deflate; client_no_context_takeover"},
  });
  // clientNoContextTakeover: false changes nothing on a ws server.
  expect_ws_server(ws_server_config(0, -1, 0, 0), {
      {"permessage-deflate; client_no_context_takeover", "permessage-deflate; client_no_context_takeover"},
      {"permessage-deflate", "permessage-deflate"},
  });
}

// Values as ws's normalizeParams reads them: JavaScript's +value.
TEST(PermessageDeflate, WsServerReadsWindowValuesAsJavaScriptNumbers) {
  expect_ws_server(ws_server_config(), {
      {"permessage-deflate; server_max_window_bits=09", "permessage-deflate; server_max_window_bits=9"},
      {"permessage-deflate; server_max_window_bits=0xA", "permessage-deflate; server_max_window_bits=10"},
      {"permessage-deflate; server_max_window_bits=0o13", "permessage-deflate; server_max_window_bits=11"},
      {"permessage-deflate; server_max_window_bits=0B1100", "permessage-deflate; server_max_window_bits=12"},
      {"permessage-deflate; server_max_window_bits=1.3e1", "permessage-deflate; server_max_window_bits=13"},
      {"permessage-deflate; server_max_window_bits=+14.", "permessage-deflate; server_max_window_bits=14"},
      {"permessage-deflate; server_max_window_bits=150e-1", "permessage-deflate; server_max_window_bits=15"},
      {"permessage-deflate; client_max_window_bits=8.0000000000000001",
       "permessage-deflate; client_max_window_bits=8"},
      {"permessage-deflate; server_max_window_bits=\"1\\0\"", "permessage-deflate; server_max_window_bits=10"},
      {"permessage-deflate; client_max_window_bits=8.000000000000002", nullptr},
      {"permessage-deflate; server_max_window_bits=9.5", nullptr},
      {"permessage-deflate; server_max_window_bits=-9", nullptr},
      {"permessage-deflate; server_max_window_bits=-0xa", nullptr},
      {"permessage-deflate; server_max_window_bits=0x", nullptr},
      {"permessage-deflate; server_max_window_bits=0x10", nullptr},
      {"permessage-deflate; server_max_window_bits=1e400", nullptr},
      {"permessage-deflate; server_max_window_bits=Infinity", nullptr},
      {"permessage-deflate; server_max_window_bits=1_0", nullptr},
      {"permessage-deflate; server_max_window_bits=e1", nullptr},
      {"permessage-deflate; server_max_window_bits=.", nullptr},
  });
}

// Whatever makes ws throw (its handshake then fails with 400) declines the
// whole header, even where a later offer would do.
TEST(PermessageDeflate, WsServerDeclinesAllWhereWsRefusesTheHandshake) {
  expect_ws_server(ws_server_config(), {
      {"permessage-deflate; foo, permessage-deflate", nullptr},
      {"permessage-deflate, permessage-deflate; server_max_window_bits", nullptr},
      {"permessage-deflate; server_no_context_takeover; server_no_context_takeover", nullptr},
      {"permessage-deflate; client_max_window_bits; client_max_window_bits=10", nullptr},
      {"permessage-deflate; server_no_context_takeover=1", nullptr},
      {"permessage-deflate; client_max_window_bits=7", nullptr},
      {"permessage-deflate; Server_No_Context_Takeover", nullptr},
      // ws's syntax: no space around '=', no empty element, nothing dangling.
      {"permessage-deflate; server_max_window_bits = 10", nullptr},
      {"permessage-deflate; server_max_window_bits= 10", nullptr},
      {"permessage-deflate,", nullptr},
      {", permessage-deflate", nullptr},
      {"permessage-deflate,, x-foo", nullptr},
      {"permessage-deflate;", nullptr},
      {"permessage-deflate; server_max_window_bits=\"10", nullptr},
      {"permessage-deflate; server_max_window_bits=\"\"", nullptr},
      {"permessage-deflate; server_max_window_bits=\"1 0\"", nullptr},
      {"x-foo; a=\"b c\", permessage-deflate", nullptr},
      {"", nullptr},
  });
  // Another extension's parameters are not ws's business; nor is another
  // spelling of the name (ws compares it case and all).
  expect_ws_server(ws_server_config(), {
      {"x-foo; bar; bar; baz=\"q\\uux\", permessage-deflate", "permessage-deflate"},
      {"PerMessage-Deflate", nullptr},
      {"PerMessage-Deflate; whatever, permessage-deflate; server_no_context_takeover",
       "permessage-deflate; server_no_context_takeover"},
      {"  permessage-deflate ;\tclient_max_window_bits=10 \t", "permessage-deflate; client_max_window_bits=10"},
  });
}

// Whatever the answer, an engine client taking it by ws's rules gets the
// windows and context rules the server uses, and never compresses with a
// window larger than the server inflates with.
TEST(PermessageDeflate, WsServerAndAWsRulesClientAgreeOnTheParameters) {
  for (const ws_answer_row& row : kWsAnswerRows) {
    const deflate_config server = ws_server_config(row.snct, row.cnct, row.sbits, row.cbits);
    for (int cbits : {wirehub::kNoClientWindowBits, 0, 9, 12}) {
      for (int sbits : {0, 9, 15}) {
        for (int flags = 0; flags < 4; ++flags) {
          deflate_config client = enabled_config();
          client.ws_answer_rules = true;
          client.server_max_window_bits = sbits;
          client.client_max_window_bits = cbits;
          client.request_server_no_context_takeover = flags & 1;
          client.client_no_context_takeover = flags & 2;
          const std::string offer = wirehub::pmd_client_offer(client);
          SCOPED_TRACE(testing::Message() << offer << " to " << row.snct << "/" << row.cnct << "/" << row.sbits
                                          << "/" << row.cbits);
          deflate_params sp, cp;
          std::string response, error;
          if (!wirehub::pmd_negotiate_server(offer, server, sp, response)) continue;
          if (!wirehub::pmd_client_accept(response, client, cp, error)) {
            // ws's client refuses the same: a client window above its offer.
            EXPECT_GT(sp.client_max_window_bits, cbits) << response << ": " << error;
            continue;
          }
          EXPECT_EQ(sp.server_no_context_takeover, cp.server_no_context_takeover) << response;
          EXPECT_EQ(sp.client_no_context_takeover, cp.client_no_context_takeover) << response;
          EXPECT_EQ(sp.server_max_window_bits, cp.server_max_window_bits) << response;
          // A client window offered and not answered: the client keeps to
          // the one it offered, the server inflates with 15.
          EXPECT_GE(sp.client_max_window_bits, cp.client_max_window_bits) << response;
          if (response.find("client_max_window_bits") != std::string::npos) {
            EXPECT_EQ(sp.client_max_window_bits, cp.client_max_window_bits) << response;
          }
        }
      }
    }
  }
}

// ------------------------------------------------------------ compression

TEST(PermessageDeflate, RoundTripsMessagesOfEverySizeAtEveryWindowWithAndWithoutContextTakeover) {
  std::mt19937 rng(1234);
  for (int bits = 8; bits <= 15; ++bits) {
    for (bool no_ctx : {false, true}) {
      deflater def(bits, 1, 8, no_ctx);
      inflater inf(bits, no_ctx);
      std::uint32_t seed = 1;
      for (std::size_t size : {0u, 1u, 100u, 70000u, 1u << 20, 0u, 100u}) {
        for (bool noise : {false, true}) {
          if (size == (1u << 20) && noise && bits != 8 && bits != 15) continue;  // keep it quick
          SCOPED_TRACE("bits=" + std::to_string(bits) + " no_ctx=" + std::to_string(no_ctx) +
                       " size=" + std::to_string(size) + " noise=" + std::to_string(noise));
          const std::string msg = make_data(size, seed++, noise);
          std::string wire;
          ASSERT_TRUE(def.compress(bytes(msg), msg.size(), wire));
          std::string back;
          ASSERT_EQ(inflate_message(inf, wire, back, 16u << 20, rng), result::ok);
          ASSERT_EQ(back.size(), msg.size());
          ASSERT_TRUE(back == msg);
        }
      }
    }
  }
}

TEST(PermessageDeflate, CompressAppendsToWhatIsAlreadyInTheOutputBuffer) {
  deflater def(15, 1, 8, true);
  inflater inf(15, true);
  const std::string msg = make_data(5000, 7);
  std::string wire = "HDR";
  ASSERT_TRUE(def.compress(bytes(msg), msg.size(), wire));
  ASSERT_EQ(wire.substr(0, 3), "HDR");
  std::string back = "pre";
  ASSERT_EQ(inf.feed(bytes(wire) + 3, wire.size() - 3, back, 1 << 20), result::ok);
  ASSERT_EQ(inf.finish(back, 1 << 20), result::ok);
  EXPECT_EQ(back, "pre" + msg);
}

TEST(PermessageDeflate, EmptyMessageIsASingleZeroByteEvenAfterOtherMessages) {
  for (bool no_ctx : {false, true}) {
    deflater def(15, 1, 8, no_ctx);
    inflater inf(15, no_ctx);
    std::mt19937 rng(1);
    for (const std::string& msg : {std::string(), make_data(300, 1), std::string(), std::string(),
                                   make_data(300, 1)}) {
      std::string wire;
      ASSERT_TRUE(def.compress(bytes(msg), msg.size(), wire));
      if (msg.empty()) {
        EXPECT_EQ(wire, std::string(1, '\0'));
      }
      std::string back;
      ASSERT_EQ(inflate_message(inf, wire, back, 1 << 20, rng), result::ok);
      EXPECT_EQ(back, msg);
    }
  }
}

TEST(PermessageDeflate, ContextTakeoverMakesARepeatedMessageSmaller) {
  const std::string msg = make_data(2000, 99);
  {
    deflater def(15, 1, 8, false);
    std::string first, second;
    ASSERT_TRUE(def.compress(bytes(msg), msg.size(), first));
    ASSERT_TRUE(def.compress(bytes(msg), msg.size(), second));
    EXPECT_LT(second.size() * 4, first.size());
    inflater inf(15, false);
    std::mt19937 rng(5);
    std::string a, b;
    ASSERT_EQ(inflate_message(inf, first, a, 1 << 20, rng), result::ok);
    ASSERT_EQ(inflate_message(inf, second, b, 1 << 20, rng), result::ok);
    EXPECT_EQ(a, msg);
    EXPECT_EQ(b, msg);
  }
  {
    deflater def(15, 1, 8, true);
    std::string first, second;
    ASSERT_TRUE(def.compress(bytes(msg), msg.size(), first));
    ASSERT_TRUE(def.compress(bytes(msg), msg.size(), second));
    EXPECT_EQ(first, second);
  }
}

TEST(PermessageDeflate, WithoutContextTakeoverTheInflaterForgetsPreviousMessages) {
  // Compressed with context, inflated without: the second message refers back
  // to the first, which the inflater no longer has.
  const std::string msg = make_data(2000, 3);
  deflater def(15, 1, 8, false);
  std::string first, second;
  ASSERT_TRUE(def.compress(bytes(msg), msg.size(), first));
  ASSERT_TRUE(def.compress(bytes(msg), msg.size(), second));
  inflater inf(15, true);
  std::string out;
  ASSERT_EQ(inf.feed(bytes(first), first.size(), out, 1 << 20), result::ok);
  ASSERT_EQ(inf.finish(out, 1 << 20), result::ok);
  out.clear();
  result r = inf.feed(bytes(second), second.size(), out, 1 << 20);
  if (r == result::ok) r = inf.finish(out, 1 << 20);
  EXPECT_EQ(r, result::error);
}

TEST(PermessageDeflate, EightBitWindowCompressorStaysWithinTwoHundredFiftySixBytes) {
  // Repeats at distances 200..600: a compressor really using 512 bytes would
  // refer past what an 8-bit inflater keeps and make it fail.
  std::mt19937 rng(77);
  std::string msg;
  std::string block = make_data(600, 8, true);
  for (int i = 0; i < 200; ++i) {
    std::size_t d = 200 + rng() % 400;
    msg += block.substr(0, d);
    msg += block.substr(0, d);
  }
  // Byte by byte, so that every back-reference crosses an inflate() call and
  // is checked against the window rather than the current output.
  auto inflate_bytewise = [](inflater& inf, const std::string& wire, std::string& out) {
    for (std::size_t i = 0; i < wire.size(); ++i) {
      result r = inf.feed(bytes(wire) + i, 1, out, 1 << 24);
      if (r != result::ok) return r;
    }
    return inf.finish(out, 1 << 24);
  };
  for (bool no_ctx : {false, true}) {
    deflater def(8, 9, 9, no_ctx);
    inflater inf(8, no_ctx);
    for (int i = 0; i < 3; ++i) {
      std::string wire, back;
      ASSERT_TRUE(def.compress(bytes(msg), msg.size(), wire));
      EXPECT_LT(wire.size(), msg.size());
      ASSERT_EQ(inflate_bytewise(inf, wire, back), result::ok);
      ASSERT_TRUE(back == msg);
    }
  }
  // Control: the same data from a 10-bit compressor does break an 8-bit inflater.
  deflater wide(10, 9, 9, true);
  inflater narrow(8, true);
  std::string wire, back;
  ASSERT_TRUE(wide.compress(bytes(msg), msg.size(), wire));
  EXPECT_EQ(inflate_bytewise(narrow, wire, back), result::error);
}

// zlib resolves a reference from the output of the same inflate() call even
// beyond the window, so only references into earlier frames are detectable:
// feed byte by byte to make every reference cross a call.
TEST(PermessageDeflate, InflaterRejectsDistancesBeyondTheAgreedWindowAcrossFrames) {
  const std::string block = make_data(1000, 4, true);
  const std::string msg = block + block;
  deflater def(15, 6, 8, true);
  std::string wire;
  ASSERT_TRUE(def.compress(bytes(msg), msg.size(), wire));
  ASSERT_LT(wire.size(), 1500u);  // the second copy really is a back-reference
  inflater inf(9, true);
  std::string out;
  result r = result::ok;
  for (std::size_t i = 0; i < wire.size() && r == result::ok; ++i) r = inf.feed(bytes(wire) + i, 1, out, 1 << 20);
  if (r == result::ok) r = inf.finish(out, 1 << 20);
  EXPECT_EQ(r, result::error);
}

// RFC 7692 section 7.2.3 examples, as another implementation would send them.
TEST(PermessageDeflate, InflatesTheRfcExamples) {
  const std::string hello = "Hello";
  auto inflate_frames = [](inflater& inf, std::vector<std::string> frames) {
    std::string out;
    for (const auto& f : frames)
      if (inf.feed(bytes(f), f.size(), out, 1000) != result::ok) return std::string("<error>");
    if (inf.finish(out, 1000) != result::ok) return std::string("<error>");
    return out;
  };
  {
    inflater inf(15, false);
    // 7.2.3.1, unfragmented and fragmented; then 7.2.3.2 sharing the window.
    EXPECT_EQ(inflate_frames(inf, {from_hex({0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00})}), hello);
    EXPECT_EQ(inflate_frames(inf, {from_hex({0xf2, 0x48, 0xcd}), from_hex({0xc9, 0xc9, 0x07, 0x00})}), hello);
    EXPECT_EQ(inflate_frames(inf, {from_hex({0xf2, 0x00, 0x11, 0x00, 0x00})}), hello);
  }
  {
    inflater inf(15, true);
    // 7.2.3.3 stored block, 7.2.3.5 two blocks, 7.2.3.6 empty.
    EXPECT_EQ(inflate_frames(inf, {from_hex({0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00})}),
              hello);
    EXPECT_EQ(inflate_frames(inf, {from_hex({0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff, 0xca, 0xc9, 0xc9,
                                             0x07, 0x00})}),
              hello);
    EXPECT_EQ(inflate_frames(inf, {from_hex({0x00})}), "");
  }
}

TEST(PermessageDeflate, InflatesMessagesEndingInAFinalBlockAndKeepsTheContext) {
  // 7.2.3.4: BFINAL set; the next message still shares the window.
  const std::string final_hello = from_hex({0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00});
  const std::string shared_hello = from_hex({0xf2, 0x00, 0x11, 0x00, 0x00});
  for (bool no_ctx : {false, true}) {
    inflater inf(15, no_ctx);
    std::string out;
    ASSERT_EQ(inf.feed(bytes(final_hello), final_hello.size(), out, 1000), result::ok);
    ASSERT_EQ(inf.finish(out, 1000), result::ok);
    EXPECT_EQ(out, "Hello");
    out.clear();
    ASSERT_EQ(inf.feed(bytes(final_hello), final_hello.size(), out, 1000), result::ok);
    ASSERT_EQ(inf.finish(out, 1000), result::ok);
    EXPECT_EQ(out, "Hello");
    if (!no_ctx) {
      out.clear();
      ASSERT_EQ(inf.feed(bytes(shared_hello), shared_hello.size(), out, 1000), result::ok);
      ASSERT_EQ(inf.finish(out, 1000), result::ok);
      EXPECT_EQ(out, "Hello");
    }
  }
}

TEST(PermessageDeflate, ZipBombStopsAtMaxSizeWithoutExpanding) {
  const std::string zeros(10u << 20, '\0');
  deflater def(15, 1, 8, true);
  std::string wire;
  ASSERT_TRUE(def.compress(bytes(zeros), zeros.size(), wire));
  ASSERT_LT(wire.size(), 64u << 10);

  const std::size_t max = 1u << 20;
  {
    inflater inf(15, true);
    std::string out;
    EXPECT_EQ(inf.feed(bytes(wire), wire.size(), out, max), result::too_big);
    EXPECT_LE(out.capacity(), max + 64);
  }
  {
    // Fed frame by frame, the limit holds across frames too.
    inflater inf(15, true);
    std::string out;
    result r = result::ok;
    for (std::size_t pos = 0; pos < wire.size() && r == result::ok; pos += 100)
      r = inf.feed(bytes(wire) + pos, std::min<std::size_t>(100, wire.size() - pos), out, max);
    if (r == result::ok) r = inf.finish(out, max);
    EXPECT_EQ(r, result::too_big);
    EXPECT_LE(out.capacity(), max + 64);
  }
}

TEST(PermessageDeflate, MaxSizeIsInclusiveAndCountsWhatIsAlreadyInTheBuffer) {
  const std::string msg = make_data(10000, 11);
  deflater def(15, 1, 8, true);
  std::string wire;
  ASSERT_TRUE(def.compress(bytes(msg), msg.size(), wire));
  std::mt19937 rng(2);
  {
    inflater inf(15, true);
    std::string out;
    EXPECT_EQ(inflate_message(inf, wire, out, msg.size(), rng), result::ok);
    EXPECT_EQ(out, msg);
  }
  {
    inflater inf(15, true);
    std::string out;
    EXPECT_EQ(inflate_message(inf, wire, out, msg.size() - 1, rng), result::too_big);
  }
  {
    inflater inf(15, true);
    std::string out = "x";
    EXPECT_EQ(inflate_message(inf, wire, out, msg.size(), rng), result::too_big);
  }
}

TEST(PermessageDeflate, CorruptInputIsAnError) {
  const std::string msg = make_data(70000, 12);
  deflater def(15, 1, 8, true);
  std::string wire;
  ASSERT_TRUE(def.compress(bytes(msg), msg.size(), wire));

  // The error comes with zlib's words (ws reports them as its message).
  std::string why;
  auto run = [&why](const std::string& payload) {
    inflater inf(15, true);
    std::string out;
    result r = inf.feed(bytes(payload), payload.size(), out, 1 << 24);
    if (r == result::ok) r = inf.finish(out, 1 << 24);
    why = inf.error_message();
    return r;
  };
  EXPECT_EQ(run(from_hex({0xff, 0xff, 0xff, 0xff})), result::error);              // reserved block type
  EXPECT_EQ(why, "invalid block type");
  EXPECT_EQ(run(from_hex({0x00, 0x05, 0x00, 0x00, 0x00, 'a'})), result::error);   // bad stored length
  EXPECT_EQ(why, "invalid stored block lengths");
  EXPECT_EQ(run(wire.substr(0, wire.size() / 2)), result::error);                 // cut inside a block
  EXPECT_EQ(why, "unexpected end of file");
}

TEST(PermessageDeflate, InflaterIsUsableForTheNextMessageAfterOneThatWasTooBig) {
  const std::string big(100000, 'a');
  const std::string small = make_data(500, 1);
  deflater def(15, 1, 8, true);
  std::string wire_big, wire_small;
  ASSERT_TRUE(def.compress(bytes(big), big.size(), wire_big));
  ASSERT_TRUE(def.compress(bytes(small), small.size(), wire_small));
  inflater inf(15, true);
  std::mt19937 rng(3);
  std::string out;
  EXPECT_EQ(inflate_message(inf, wire_big, out, 1000, rng), result::too_big);
  out.clear();
  EXPECT_EQ(inflate_message(inf, wire_small, out, 1000, rng), result::ok);
  EXPECT_EQ(out, small);
}


// ------------------------------------------------------- parked streams

// A whole raw-deflate stream as zlib alone builds it: one z_stream over all
// messages, each ended by a sync flush (RFC 7692 7.2.1, context takeover).
class zlib_sender {
 public:
  explicit zlib_sender(int bits) {
    // zlib refuses a raw 8-bit window (see permessage_deflate.cpp).
    EXPECT_EQ(deflateInit2(&zs_, 6, Z_DEFLATED, -std::max(bits, 9), 8, Z_DEFAULT_STRATEGY), Z_OK);
  }
  ~zlib_sender() { deflateEnd(&zs_); }
  std::string message(const std::string& m) {
    // zlib answers a sync flush with nothing to flush with Z_BUF_ERROR;
    // an empty message is one empty stored block (7.2.3.6) for everyone.
    if (m.empty()) return std::string(1, '\0');
    std::string out(deflateBound(&zs_, m.size()) + 64, '\0');
    zs_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(m.data()));
    zs_.avail_in = static_cast<uInt>(m.size());
    zs_.next_out = reinterpret_cast<Bytef*>(&out[0]);
    zs_.avail_out = static_cast<uInt>(out.size());
    EXPECT_EQ(deflate(&zs_, Z_SYNC_FLUSH), Z_OK);
    out.resize(out.size() - zs_.avail_out);
    EXPECT_GE(out.size(), 4u);
    out.resize(out.size() - 4);  // the 00 00 ff ff tail
    return out;
  }

 private:
  z_stream zs_{};
};

// The matching reference receiver: one zlib inflate stream, never parked.
class zlib_receiver {
 public:
  explicit zlib_receiver(int bits) { EXPECT_EQ(inflateInit2(&zs_, -bits), Z_OK); }
  ~zlib_receiver() { inflateEnd(&zs_); }
  std::optional<std::string> message(std::string wire) {
    wire.append("\x00\x00\xff\xff", 4);
    std::string out;
    zs_.next_in = reinterpret_cast<Bytef*>(&wire[0]);
    zs_.avail_in = static_cast<uInt>(wire.size());
    char buf[16384];
    while (zs_.avail_in != 0) {
      zs_.next_out = reinterpret_cast<Bytef*>(buf);
      zs_.avail_out = sizeof buf;
      const int rc = inflate(&zs_, Z_SYNC_FLUSH);
      if (rc != Z_OK && rc != Z_BUF_ERROR) return std::nullopt;
      out.append(buf, sizeof buf - zs_.avail_out);
      if (rc == Z_BUF_ERROR && zs_.avail_out != 0) break;
    }
    return out;
  }

 private:
  z_stream zs_{};
};

// Sizes that exercise the window: tiny, around the window, far above it.
std::size_t random_size(std::mt19937& rng, int bits) {
  switch (rng() % 6) {
    case 0: return rng() % 8;
    case 1: return rng() % 300;
    case 2: return (std::size_t{1} << bits) - 50 + rng() % 100;
    case 3: return rng() % (std::size_t{3} << bits);
    case 4: return rng() % 5000;
    default: return 40000 + rng() % 40000;
  }
}

// Messages that repeat earlier ones (at every distance up to past the
// window), so context takeover really refers back across messages.
std::string next_message(std::mt19937& rng, std::vector<std::string>& sent, int bits) {
  const std::size_t n = random_size(rng, bits);
  std::string m;
  if (!sent.empty() && rng() % 2 == 0) {
    const std::string& old = sent[sent.size() - 1 - rng() % std::min<std::size_t>(sent.size(), 4)];
    while (m.size() < n && !old.empty()) m += old.substr(0, std::min(old.size(), n - m.size()));
  }
  if (m.size() < n) m += make_data(n - m.size(), rng(), rng() % 4 == 0);
  sent.push_back(m);
  if (sent.size() > 8) sent.erase(sent.begin());
  return m;
}

TEST(PermessageDeflate, ParkedInflaterDecodesLongContextTakeoverStreamsFromZlibAtEveryWindow) {
  // A parked inflater must see exactly the sliding window a never-parked one
  // sees: a zlib-built stream of many messages decodes identically when the
  // inflater is parked after random messages.
  std::mt19937 rng(2024);
  for (int bits = 8; bits <= 15; ++bits) {
    SCOPED_TRACE("bits=" + std::to_string(bits));
    zlib_sender z(bits);
    inflater inf(bits, false);
    std::vector<std::string> sent;
    for (int i = 0; i < 120; ++i) {
      const std::string msg = next_message(rng, sent, bits);
      std::string back;
      ASSERT_EQ(inflate_message(inf, z.message(msg), back, 1u << 20, rng), result::ok) << "message " << i;
      ASSERT_TRUE(back == msg) << "message " << i;
      if (rng() % 2) {
        inf.park();
        ASSERT_TRUE(inf.parked());
        EXPECT_LE(inf.held_bytes(), std::size_t{1} << bits);
      }
    }
  }
}

TEST(PermessageDeflate, ParkedDeflaterProducesWhatAnUnparkedZlibInflaterDecodesAtEveryWindow) {
  // And the other way: our deflater parked between random messages, its
  // output checked by a plain zlib stream that keeps its whole window.
  std::mt19937 rng(7);
  for (int bits = 8; bits <= 15; ++bits) {
    for (int level : {1, 6, 9}) {
      SCOPED_TRACE("bits=" + std::to_string(bits) + " level=" + std::to_string(level));
      deflater def(bits, level, 8, false);
      zlib_receiver ref(bits);
      inflater ours(bits, false);
      std::vector<std::string> sent;
      std::size_t wire_total = 0, plain_total = 0;
      for (int i = 0; i < 60; ++i) {
        const std::string msg = next_message(rng, sent, bits);
        std::string wire;
        ASSERT_TRUE(def.compress(bytes(msg), msg.size(), wire));
        wire_total += wire.size();
        plain_total += msg.size();
        auto back = ref.message(wire);
        ASSERT_TRUE(back.has_value()) << "message " << i;
        ASSERT_TRUE(*back == msg) << "message " << i;
        std::string back2;
        ASSERT_EQ(inflate_message(ours, wire, back2, 1u << 20, rng), result::ok);
        ASSERT_TRUE(back2 == msg);
        if (rng() % 2) def.park();
        if (rng() % 2) ours.park();
      }
      EXPECT_LT(wire_total, plain_total);
    }
  }
}

TEST(PermessageDeflate, ParkingKeepsTheContextSoARepeatedMessageStaysSmall) {
  const std::string msg = make_data(2000, 99);
  deflater def(15, 1, 8, false);
  inflater inf(15, false);
  std::mt19937 rng(5);
  std::string first, second;
  ASSERT_TRUE(def.compress(bytes(msg), msg.size(), first));
  def.park();
  ASSERT_TRUE(def.compress(bytes(msg), msg.size(), second));
  EXPECT_LT(second.size() * 4, first.size()) << "the second message refers back across the park";
  std::string a, b;
  ASSERT_EQ(inflate_message(inf, first, a, 1 << 20, rng), result::ok);
  inf.park();
  ASSERT_EQ(inflate_message(inf, second, b, 1 << 20, rng), result::ok);
  EXPECT_EQ(a, msg);
  EXPECT_EQ(b, msg);
}

TEST(PermessageDeflate, AfterOneSmallMessageAParkedInflaterHoldsOnlyThatMessage) {
  const std::string msg = make_data(200, 3);
  deflater def(15, 1, 8, true);
  std::string wire;
  ASSERT_TRUE(def.compress(bytes(msg), msg.size(), wire));
  std::mt19937 rng(1);

  inflater inf(15, false);
  EXPECT_EQ(inf.held_bytes(), 0u) << "no zlib state before the first message";
  std::string out;
  ASSERT_EQ(inflate_message(inf, wire, out, 1 << 20, rng), result::ok);
  // Live: zlib's state plus a whole 32 KiB window.
  EXPECT_GT(inf.held_bytes(), 32768u);
  inf.park();
  EXPECT_EQ(inf.held_bytes(), msg.size()) << "exactly the history produced";

  // A narrower agreed window is what the inflater allocates.
  inflater narrow(10, false);
  out.clear();
  deflater def10(10, 1, 8, true);
  std::string wire10;
  ASSERT_TRUE(def10.compress(bytes(msg), msg.size(), wire10));
  ASSERT_EQ(inflate_message(narrow, wire10, out, 1 << 20, rng), result::ok);
  EXPECT_LT(narrow.held_bytes(), 1024u + 8192u);

  // Without context takeover nothing is kept.
  inflater no_ctx(15, true);
  out.clear();
  ASSERT_EQ(inflate_message(no_ctx, wire, out, 1 << 20, rng), result::ok);
  no_ctx.park();
  EXPECT_EQ(no_ctx.held_bytes(), 0u);

  // After many messages the history is capped at the window.
  for (int i = 0; i < 300; ++i) {
    out.clear();
    ASSERT_EQ(inflate_message(inf, wire, out, 1 << 20, rng), result::ok);
  }
  inf.park();
  EXPECT_EQ(inf.held_bytes(), 32768u);
}

TEST(PermessageDeflate, AfterOneSmallMessageAParkedDeflaterHoldsOnlyThatMessage) {
  const std::string msg = make_data(200, 4);
  deflater def(15, 6, 8, false);
  EXPECT_EQ(def.held_bytes(), 0u);
  std::string wire;
  ASSERT_TRUE(def.compress(bytes(msg), msg.size(), wire));
  EXPECT_GT(def.held_bytes(), 200000u) << "zlib's window, hash chains and pending buffer";
  def.park();
  EXPECT_EQ(def.held_bytes(), msg.size());
  deflater no_ctx(15, 6, 8, true);
  ASSERT_TRUE(no_ctx.compress(bytes(msg), msg.size(), wire));
  no_ctx.park();
  EXPECT_EQ(no_ctx.held_bytes(), 0u);
}

TEST(PermessageDeflate, ParkInTheMiddleOfAMessageWaitsForItsEnd) {
  const std::string msg = make_data(5000, 8);
  deflater def(15, 1, 8, false);
  std::string wire;
  ASSERT_TRUE(def.compress(bytes(msg), msg.size(), wire));
  inflater inf(15, false);
  std::string out;
  ASSERT_EQ(inf.feed(bytes(wire), wire.size() / 2, out, 1 << 20), result::ok);
  EXPECT_TRUE(inf.mid_message());
  inf.park();
  EXPECT_FALSE(inf.parked());
  ASSERT_EQ(inf.feed(bytes(wire) + wire.size() / 2, wire.size() - wire.size() / 2, out, 1 << 20), result::ok);
  ASSERT_EQ(inf.finish(out, 1 << 20), result::ok);
  EXPECT_FALSE(inf.mid_message());
  EXPECT_EQ(out, msg);
  inf.park();
  EXPECT_TRUE(inf.parked());
}

TEST(PermessageDeflate, AFinalBlockWithContextTakeoverParksTheWindowInsteadOfCopyingIt) {
  // 7.2.3.4: "Hello" in a BFINAL block; zlib must restart its stream, and the
  // window survives as the parked history (5 bytes, not a 32 KiB copy).
  const std::string final_hello = from_hex({0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00});
  const std::string shared_hello = from_hex({0xf2, 0x00, 0x11, 0x00, 0x00});
  inflater inf(15, false);
  std::string out;
  ASSERT_EQ(inf.feed(bytes(final_hello), final_hello.size(), out, 1000), result::ok);
  ASSERT_EQ(inf.finish(out, 1000), result::ok);
  EXPECT_TRUE(inf.parked());
  EXPECT_EQ(inf.held_bytes(), 5u);
  out.clear();
  ASSERT_EQ(inf.feed(bytes(shared_hello), shared_hello.size(), out, 1000), result::ok);
  ASSERT_EQ(inf.finish(out, 1000), result::ok);
  EXPECT_EQ(out, "Hello");
}

TEST(PermessageDeflate, PoolKeepsOneCompressorPerWindowLevelAndMemLevel) {
  wirehub::deflater_pool pool;
  deflater& a = pool.get(15, 1, 8);
  deflater& b = pool.get(15, 9, 8);
  deflater& c = pool.get(15, 1, 9);
  deflater& d = pool.get(12, 1, 8);
  EXPECT_NE(&a, &b);
  EXPECT_NE(&a, &c);
  EXPECT_NE(&a, &d);
  EXPECT_EQ(&a, &pool.get(15, 1, 8));
  EXPECT_EQ(&pool.get(8, 1, 8), &pool.get(9, 1, 8)) << "8 compresses as 9";
  EXPECT_EQ(&pool.get(0, 1, 8), &a) << "out of range means 15";
  EXPECT_EQ(pool.size(), 5u);
  // Each really compresses at its own level.
  const std::string msg = make_data(50000, 21);
  std::string fast, best;
  ASSERT_TRUE(a.compress(bytes(msg), msg.size(), fast));
  ASSERT_TRUE(b.compress(bytes(msg), msg.size(), best));
  EXPECT_LT(best.size(), fast.size());
  // The thread's own pool is one per thread.
  EXPECT_EQ(&wirehub::thread_deflaters(), &wirehub::thread_deflaters());
}

// What 1000 connections cost after one small compressed message each, with
// and without parking; prints the figures (see the report in issue 11).
TEST(PermessageDeflate, ThousandIdleInflatersAfterOneSmallMessageHoldUnderAKilobyteEachWhenParked) {
  const std::string msg = make_data(200, 5);
  deflater def(15, 1, 8, true);
  std::string wire;
  ASSERT_TRUE(def.compress(bytes(msg), msg.size(), wire));
  std::mt19937 rng(9);
  constexpr int kConns = 1000;
  malloc_trim(0);
  const std::size_t heap0 = mallinfo2().uordblks;
  std::vector<std::unique_ptr<inflater>> all;
  std::size_t held_live = 0;
  for (int i = 0; i < kConns; ++i) {
    all.push_back(std::make_unique<inflater>(15, false));
    std::string out;
    ASSERT_EQ(inflate_message(*all.back(), wire, out, 1 << 20, rng), result::ok);
    held_live += all.back()->held_bytes();
  }
  const std::size_t heap_live = mallinfo2().uordblks - heap0;
  std::size_t held_parked = 0;
  for (auto& i : all) {
    i->park();
    held_parked += i->held_bytes();
  }
  const std::size_t heap_parked = mallinfo2().uordblks - heap0;
  std::printf("[ figures  ] per inflater after one 200-byte message: live %zu B held (%zu B heap), "
              "parked %zu B held (%zu B heap)\n",
              held_live / kConns, heap_live / kConns, held_parked / kConns, heap_parked / kConns);
  EXPECT_GT(held_live / kConns, 32768u);
  EXPECT_EQ(held_parked / kConns, msg.size());
  EXPECT_LT(heap_parked / kConns, 1024u);
}

// Parking costs an init plus a dictionary copy per message when it is done
// after every message; this measures it against not parking.
TEST(PermessageDeflate, ParkingAfterEveryMessageCostsMicrosecondsNotMilliseconds) {
  const std::string msg = make_data(200, 6);
  deflater def(15, 1, 8, false);
  std::vector<std::string> wires;
  for (int i = 0; i < 2000; ++i) {
    wires.emplace_back();
    ASSERT_TRUE(def.compress(bytes(msg), msg.size(), wires.back()));
  }
  auto run = [&](bool park_inflater, bool park_deflater) {
    inflater inf(15, false);
    deflater d(15, 1, 8, false);
    std::string out, z;
    const auto t0 = std::chrono::steady_clock::now();
    for (const auto& w : wires) {
      out.clear();
      z.clear();
      EXPECT_EQ(inf.feed(bytes(w), w.size(), out, 1 << 20), result::ok);
      EXPECT_EQ(inf.finish(out, 1 << 20), result::ok);
      EXPECT_TRUE(d.compress(bytes(msg), msg.size(), z));
      if (park_inflater) inf.park();
      if (park_deflater) d.park();
    }
    return std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count() / wires.size();
  };
  run(false, false);  // warm up
  const double plain = run(false, false);
  const double inf_parked = run(true, false);
  const double both_parked = run(true, true);
  std::printf("[ figures  ] per 200-byte message (inflate + deflate, 32 KiB history): %.2f us, "
              "inflater parked each time %.2f us, both parked %.2f us\n",
              plain, inf_parked, both_parked);
  EXPECT_LT(inf_parked - plain, 100.0);
  EXPECT_LT(both_parked - plain, 1000.0);
}

}  // namespace
