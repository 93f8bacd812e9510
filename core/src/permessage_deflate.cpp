// permessage_deflate.cpp — RFC 7692 over zlib (raw deflate).
//
// Window bits 8: since zlib 1.2.9, deflateInit2 rejects a raw window of 8 bits
// (older versions silently used 9). We therefore build every compressor with
// at least 9 bits. That is still correct when 8 was agreed: zlib never emits a
// distance larger than MAX_DIST = w_size - MIN_LOOKAHEAD = 512 - 262 = 250 for
// a 512-byte window, which fits the peer's 256-byte window. Node (and so npm
// `ws`) relies on the same property when it maps 8 to 9. When we are the side
// choosing a value we never pick 8 (we pick 9): a peer's zlib-based compressor
// (python-websockets, autobahn-python) may fail to initialise with 8. When the
// peer forces 8 (an offer of server_max_window_bits=8, an answer of
// client_max_window_bits=8) we accept it, as the RFC requires, and rely on the
// argument above. A client offers 8 only when its host configured 8, as ws
// then does. Inflaters accept 8 in every zlib version.

#include "wirehub/permessage_deflate.hpp"

#include <zlib.h>

#include <algorithm>
#include <charconv>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace wirehub {

namespace {

// ------------------------------------------------------------------ parsing

struct ext_param {
  std::string_view name;
  std::string value;  // unescaped when it came as a quoted-string
  bool has_value = false;
};

struct extension {
  std::string_view name;
  std::vector<ext_param> params;
};

bool is_tchar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+':
    case '-': case '.': case '^': case '_': case '`': case '|': case '~':
      return true;
    default:
      return false;
  }
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

class ext_parser {
 public:
  explicit ext_parser(std::string_view s) : s_(s) {}

  // RFC 6455 9.1 grammar with RFC 7230 list rules: empty list elements and
  // optional whitespace around every separator are tolerated.
  bool parse(std::vector<extension>& out) {
    for (;;) {
      skip_ows();
      if (at_end()) return true;
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      extension ext;
      ext.name = token();
      if (ext.name.empty()) return false;
      skip_ows();
      while (!at_end() && peek() == ';') {
        ++pos_;
        skip_ows();
        ext_param p;
        p.name = token();
        if (p.name.empty()) return false;
        skip_ows();
        if (!at_end() && peek() == '=') {
          ++pos_;
          skip_ows();
          p.has_value = true;
          if (!at_end() && peek() == '"') {
            if (!quoted(p.value)) return false;
            // RFC 6455 9.1: the unescaped value must itself be a token.
            if (p.value.empty() || !std::all_of(p.value.begin(), p.value.end(), is_tchar)) return false;
          } else {
            std::string_view v = token();
            if (v.empty()) return false;
            p.value.assign(v.data(), v.size());
          }
          skip_ows();
        }
        ext.params.push_back(std::move(p));
      }
      out.push_back(std::move(ext));
      if (at_end()) return true;
      if (peek() != ',') return false;
      ++pos_;
    }
  }

 private:
  bool at_end() const { return pos_ >= s_.size(); }
  char peek() const { return s_[pos_]; }
  void skip_ows() {
    while (!at_end() && (peek() == ' ' || peek() == '\t')) ++pos_;
  }
  std::string_view token() {
    std::size_t start = pos_;
    while (!at_end() && is_tchar(peek())) ++pos_;
    return s_.substr(start, pos_ - start);
  }
  bool quoted(std::string& v) {
    ++pos_;  // opening quote
    while (!at_end()) {
      char c = s_[pos_++];
      if (c == '"') return true;
      if (c == '\\') {
        if (at_end()) return false;
        c = s_[pos_++];
      }
      v.push_back(c);
    }
    return false;
  }

  std::string_view s_;
  std::size_t pos_ = 0;
};

constexpr std::string_view kExtName = "permessage-deflate";
constexpr std::string_view kServerNoCtx = "server_no_context_takeover";
constexpr std::string_view kClientNoCtx = "client_no_context_takeover";
constexpr std::string_view kServerBits = "server_max_window_bits";
constexpr std::string_view kClientBits = "client_max_window_bits";

// RFC 7692 7.1.2: 1*DIGIT with a value of 8..15.
bool parse_bits(const std::string& v, int& bits) {
  if (v.empty()) return false;
  int n = 0;
  for (char c : v) {
    if (c < '0' || c > '9') return false;
    n = n * 10 + (c - '0');
    if (n > 15) return false;
  }
  if (n < 8) return false;
  bits = n;
  return true;
}

// The parameters of one permessage-deflate offer or answer.
struct pmd_values {
  bool server_no_ctx = false;
  bool client_no_ctx = false;
  int server_bits = 0;  // 0 = absent
  bool client_bits_present = false;
  int client_bits = 0;  // 0 = present without a value (offers only)
};

// Validates the parameters per RFC 7692 7.1; `answer` selects the stricter
// rules of a server's answer (client_max_window_bits needs a value there).
bool read_pmd_params(const extension& ext, bool answer, pmd_values& v, std::string& why) {
  bool seen_snct = false, seen_cnct = false, seen_sbits = false, seen_cbits = false;
  for (const ext_param& p : ext.params) {
    if (iequals(p.name, kServerNoCtx) || iequals(p.name, kClientNoCtx)) {
      const bool server = iequals(p.name, kServerNoCtx);
      bool& seen = server ? seen_snct : seen_cnct;
      if (seen) {
        why = "duplicate " + std::string(p.name);
        return false;
      }
      seen = true;
      if (p.has_value) {
        why = std::string(p.name) + " must not have a value";
        return false;
      }
      (server ? v.server_no_ctx : v.client_no_ctx) = true;
    } else if (iequals(p.name, kServerBits)) {
      if (seen_sbits) {
        why = "duplicate server_max_window_bits";
        return false;
      }
      seen_sbits = true;
      if (!p.has_value || !parse_bits(p.value, v.server_bits)) {
        why = "server_max_window_bits needs a value of 8..15";
        return false;
      }
    } else if (iequals(p.name, kClientBits)) {
      if (seen_cbits) {
        why = "duplicate client_max_window_bits";
        return false;
      }
      seen_cbits = true;
      v.client_bits_present = true;
      if (!p.has_value) {
        if (answer) {
          why = "client_max_window_bits in an answer needs a value";
          return false;
        }
        v.client_bits = 0;
      } else if (!parse_bits(p.value, v.client_bits)) {
        why = "client_max_window_bits must be 8..15";
        return false;
      }
    } else {
      why = "unknown parameter " + std::string(p.name);
      return false;
    }
  }
  return true;
}

// Out-of-range configuration means "default" (the C API uses 0 for that).
int cfg_bits(int bits) { return bits >= 8 && bits <= 15 ? bits : 15; }

// What we pick when the choice is ours (see the note at the top about 8).
int chosen_bits(int bits) { return std::max(cfg_bits(bits), 9); }

void append_param(std::string& s, std::string_view name) {
  s += "; ";
  s += name;
}

void append_param(std::string& s, std::string_view name, int value) {
  append_param(s, name);
  s += '=';
  s += std::to_string(value);
}

bool explicit_bits(int bits) { return bits >= 8 && bits <= 15; }

// The client offer as values; pmd_client_offer and pmd_client_accept share it.
// The values are offered as configured, 8 included, as ws does: as
// client_max_window_bits, 8 limits our own compressor (which then runs with 9,
// see the note at the top); as server_max_window_bits, it asks the server for
// 8, which we inflate.
pmd_values client_offer_values(const deflate_config& cfg) {
  pmd_values v;
  v.server_no_ctx = cfg.request_server_no_context_takeover;
  v.client_no_ctx = cfg.client_no_context_takeover;
  if (explicit_bits(cfg.server_max_window_bits)) v.server_bits = cfg.server_max_window_bits;
  v.client_bits_present = cfg.client_max_window_bits != kNoClientWindowBits;
  // Valueless: the server may then pick any size.
  v.client_bits = explicit_bits(cfg.client_max_window_bits) ? cfg.client_max_window_bits : 0;
  return v;
}

constexpr unsigned char kTail[4] = {0x00, 0x00, 0xff, 0xff};

// Resizes like std::string would, but never lets the capacity pass `cap`
// (std::string's own growth doubles, which could allocate twice max_size).
// A fresh string's reserve() allocates exactly what is asked.
void grow_capped(std::string& s, std::size_t new_size, std::size_t cap) {
  if (new_size > s.capacity()) {
    const std::size_t doubled = s.capacity() > SIZE_MAX / 2 ? SIZE_MAX : s.capacity() * 2;
    std::string bigger;
    // Past half the cap, straight to the cap: a doubling that stopped just
    // short of it would be copied once more, holding twice the cap at the
    // peak instead of 1.5 times.
    std::size_t want = std::max(new_size, std::min(cap, doubled));
    if (want > cap / 2) want = std::max(new_size, cap);
    bigger.reserve(want);
    bigger.append(s);
    s.swap(bigger);
  }
  s.resize(new_size);
}

// ------------------------------------------------- ws 8's server answer
//
// ws_answer_rules on a server: the offers are read as ws 8 reads them
// (lib/extension.js parse() and PerMessageDeflate#normalizeParams), the offer
// is chosen and the answer worded as its acceptAsServer() and format() do.
// ws refuses the whole handshake on any error it throws there; every such
// case declines the whole header here, so the first error found is as good
// as ws's own (which may differ in wording only).

enum ws_key : std::uint8_t { ws_snct, ws_cnct, ws_sbits, ws_cbits };

struct ws_param {
  ws_key key;
  int value;  // 0: no value (ws's `true`), else 8..15
};

// One permessage-deflate offer: its parameters in the order they came, which
// is the order of the keys of ws's params object and so of its answer.
struct ws_offer {
  ws_param params[4];
  int count = 0;
  ws_param* find(ws_key k) {
    for (int i = 0; i < count; ++i)
      if (params[i].key == k) return &params[i];
    return nullptr;
  }
  const ws_param* find(ws_key k) const { return const_cast<ws_offer*>(this)->find(k); }
  // ws: `params[k] = v`; a new key goes last, an existing one keeps its place.
  void set(ws_key k, int v) {
    if (ws_param* p = find(k)) {
      p->value = v;
      return;
    }
    params[count++] = {k, v};
  }
  // ws: `delete params[k]`.
  void erase(ws_key k) {
    for (int i = 0; i < count; ++i) {
      if (params[i].key != k) continue;
      for (int j = i + 1; j < count; ++j) params[j - 1] = params[j];
      --count;
      return;
    }
  }
};

bool is_digit_in(char c, int radix) {
  int d;
  if (c >= '0' && c <= '9') d = c - '0';
  else if (c >= 'a' && c <= 'z') d = c - 'a' + 10;
  else if (c >= 'A' && c <= 'Z') d = c - 'A' + 10;
  else return false;
  return d < radix;
}

// ws's `+value` then Number.isInteger and 8..15: JavaScript's StringToNumber
// on a token, so "09", "1e1", "10.0", "+9" and "0xa" are all valid windows,
// answered as the plain number. `v` holds token characters only, so none of
// StringToNumber's whitespace rules apply.
bool ws_window_bits(std::string_view v, int& bits) {
  if (v.size() > 2 && v[0] == '0') {
    const char p = static_cast<char>(v[1] | 0x20);
    const int radix = p == 'x' ? 16 : p == 'o' ? 8 : p == 'b' ? 2 : 0;
    if (radix != 0) {
      int n = 0;
      for (std::size_t i = 2; i < v.size(); ++i) {
        if (!is_digit_in(v[i], radix)) return false;
        const char c = v[i];
        const int d = c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;
        // Saturate: anything above 15 is refused whatever its digits.
        n = std::min(n * radix + d, 16);
      }
      if (n < 8 || n > 15) return false;
      bits = n;
      return true;
    }
  }
  std::size_t i = 0;
  bool negative = false;
  if (v[0] == '+' || v[0] == '-') {
    negative = v[0] == '-';
    ++i;
  }
  // StrUnsignedDecimalLiteral: digits [. digits] [e[+-]digits], or . digits
  // [e...]; "Infinity" and anything else are not integers in 8..15.
  const std::size_t num = i;
  std::size_t int_digits = 0, frac_digits = 0;
  while (i < v.size() && v[i] >= '0' && v[i] <= '9') ++i, ++int_digits;
  if (i < v.size() && v[i] == '.') {
    ++i;
    while (i < v.size() && v[i] >= '0' && v[i] <= '9') ++i, ++frac_digits;
  }
  if (int_digits + frac_digits == 0) return false;
  if (i < v.size() && (v[i] == 'e' || v[i] == 'E')) {
    ++i;
    if (i < v.size() && (v[i] == '+' || v[i] == '-')) ++i;
    std::size_t exp_digits = 0;
    while (i < v.size() && v[i] >= '0' && v[i] <= '9') ++i, ++exp_digits;
    if (exp_digits == 0) return false;
  }
  if (i != v.size()) return false;
  if (negative) return false;  // -0 and below: never 8..15
  // Correctly rounded as JavaScript rounds ("8.0000000000000001" is 8), and
  // independent of the host's locale, unlike strtod.
  double d = 0;
  const auto r = std::from_chars(v.data() + num, v.data() + v.size(), d, std::chars_format::general);
  if (r.ec != std::errc() || r.ptr != v.data() + v.size()) return false;  // out of range: 0 or Infinity
  if (!(d >= 8 && d <= 15) || d != static_cast<double>(static_cast<int>(d))) return false;
  bits = static_cast<int>(d);
  return true;
}

// normalizeParams() for one parameter of a permessage-deflate offer. `bare`:
// no value (ws's `true`). Names are compared as ws does, case and all.
bool ws_add_param(ws_offer& o, std::string_view name, bool bare, std::string_view value) {
  ws_key k;
  if (name == kServerNoCtx) k = ws_snct;
  else if (name == kClientNoCtx) k = ws_cnct;
  else if (name == kServerBits) k = ws_sbits;
  else if (name == kClientBits) k = ws_cbits;
  else return false;  // Unknown parameter
  if (o.find(k)) return false;  // must have only a single value
  int bits = 0;
  switch (k) {
    case ws_snct:
    case ws_cnct:
      if (!bare) return false;
      break;
    case ws_sbits:
      if (bare || !ws_window_bits(value, bits)) return false;  // +true is 1
      break;
    case ws_cbits:
      if (!bare && !ws_window_bits(value, bits)) return false;
      break;
  }
  o.set(k, bits);
  return true;
}

// A port of ws's parse() (lib/extension.js), state for state, keeping only
// the permessage-deflate offers: what it throws on returns false.
class ws_ext_parser {
 public:
  ws_ext_parser(std::string_view s, std::vector<ws_offer>& out) : s_(s), out_(out) {}

  bool parse() {
    std::size_t i = 0;
    for (; i < s_.size(); ++i) {
      const char c = s_[i];
      code_ = static_cast<unsigned char>(c);
      const bool tok = is_tchar(c);
      const bool ws = c == ' ' || c == '\t';
      if (!in_ext_) {
        if (end_ == npos && tok) {
          if (start_ == npos) start_ = i;
        } else if (i != 0 && ws) {
          if (end_ == npos && start_ != npos) end_ = i;
        } else if (c == ';' || c == ',') {
          if (start_ == npos) return false;
          if (end_ == npos) end_ = i;
          const std::string_view name = s_.substr(start_, end_ - start_);
          if (c == ',') {
            if (name == kExtName) out_.emplace_back();
          } else {
            begin_ext(name);
          }
          start_ = end_ = npos;
        } else {
          return false;
        }
      } else if (!in_value_) {
        if (end_ == npos && tok) {
          if (start_ == npos) start_ = i;
        } else if (ws) {
          if (end_ == npos && start_ != npos) end_ = i;
        } else if (c == ';' || c == ',') {
          if (start_ == npos) return false;
          if (end_ == npos) end_ = i;
          if (!param(s_.substr(start_, end_ - start_), true, {})) return false;
          if (c == ',') end_ext();
          start_ = end_ = npos;
        } else if (c == '=' && start_ != npos && end_ == npos) {
          param_ = s_.substr(start_, i - start_);
          in_value_ = true;
          start_ = end_ = npos;
        } else {
          return false;
        }
      } else {
        if (escaping_) {
          if (!tok) return false;
          if (start_ == npos) start_ = i;
          else must_unescape_ = true;
          escaping_ = false;
        } else if (in_quotes_) {
          if (tok) {
            if (start_ == npos) start_ = i;
          } else if (c == '"' && start_ != npos) {
            in_quotes_ = false;
            end_ = i;
          } else if (c == '\\') {
            escaping_ = true;
          } else {
            return false;
          }
        } else if (c == '"' && s_[i - 1] == '=') {
          in_quotes_ = true;
        } else if (end_ == npos && tok) {
          if (start_ == npos) start_ = i;
        } else if (start_ != npos && ws) {
          if (end_ == npos) end_ = i;
        } else if (c == ';' || c == ',') {
          if (start_ == npos) return false;
          if (end_ == npos) end_ = i;
          if (!value(s_.substr(start_, end_ - start_))) return false;
          if (c == ',') end_ext();
          in_value_ = false;
          start_ = end_ = npos;
        } else {
          return false;
        }
      }
    }
    if (start_ == npos || in_quotes_ || code_ == ' ' || code_ == '\t') return false;
    if (end_ == npos) end_ = i;
    const std::string_view token = s_.substr(start_, end_ - start_);
    if (!in_ext_) {
      if (token == kExtName) out_.emplace_back();
      return true;
    }
    if (!(in_value_ ? value(token) : param(token, true, {}))) return false;
    end_ext();
    return true;
  }

 private:
  static constexpr std::size_t npos = std::string_view::npos;

  void begin_ext(std::string_view name) {
    in_ext_ = true;
    pmd_ = name == kExtName;
    cur_ = ws_offer{};
  }
  void end_ext() {
    if (pmd_) out_.push_back(cur_);
    in_ext_ = false;
  }
  // Another extension's parameters are never looked at by ws.
  bool param(std::string_view name, bool bare, std::string_view v) {
    return !pmd_ || ws_add_param(cur_, name, bare, v);
  }
  bool value(std::string_view v) {
    if (!must_unescape_) return param(param_, false, v);
    must_unescape_ = false;
    // ws drops every backslash; the result is a token.
    std::string plain;
    for (char ch : v)
      if (ch != '\\') plain.push_back(ch);
    return param(param_, false, plain);
  }

  std::string_view s_;
  std::vector<ws_offer>& out_;
  ws_offer cur_;
  std::string_view param_;
  std::size_t start_ = npos, end_ = npos;
  int code_ = -1;
  bool in_ext_ = false, in_value_ = false, pmd_ = false;
  bool escaping_ = false, in_quotes_ = false, must_unescape_ = false;
};

bool ws_negotiate_server(std::string_view header, const deflate_config& cfg, deflate_params& out,
                         std::string& response) {
  // Node hands ws the value without the whitespace around it; so do we.
  while (!header.empty() && (header.front() == ' ' || header.front() == '\t')) header.remove_prefix(1);
  while (!header.empty() && (header.back() == ' ' || header.back() == '\t')) header.remove_suffix(1);
  std::vector<ws_offer> offers;
  if (!ws_ext_parser(header, offers).parse()) return false;

  const int sbits = cfg.server_max_window_bits;
  const int cbits = cfg.client_max_window_bits;
  const bool s_number = explicit_bits(sbits);
  const bool c_number = explicit_bits(cbits);
  const ws_offer* accepted = nullptr;
  for (const ws_offer& o : offers) {
    const ws_param* s = o.find(ws_sbits);
    if (cfg.refuse_server_no_context_takeover && o.find(ws_snct)) continue;
    // ws compares the numbers: an offer of 9 is refused when 12 is set.
    if (s && (sbits == kNoServerWindowBits || (s_number && sbits > s->value))) continue;
    if (c_number && !o.find(ws_cbits)) continue;
    accepted = &o;
    break;
  }
  if (accepted == nullptr) return false;  // None of the extension offers can be accepted

  ws_offer a = *accepted;
  if (cfg.server_no_context_takeover) a.set(ws_snct, 0);
  if (cfg.client_no_context_takeover) a.set(ws_cnct, 0);
  if (s_number) a.set(ws_sbits, sbits);
  if (c_number) {
    // Answered even above the offered value, as ws does: the client was told
    // this window, so the inflater below takes it (never a smaller one).
    a.set(ws_cbits, cbits);
  } else if (const ws_param* c = a.find(ws_cbits); c && (c->value == 0 || cbits == kNoClientWindowBits)) {
    a.erase(ws_cbits);
  }

  deflate_params p;
  std::string r(kExtName);
  for (int i = 0; i < a.count; ++i) {
    const ws_param& x = a.params[i];
    switch (x.key) {
      case ws_snct:
        p.server_no_context_takeover = true;
        append_param(r, kServerNoCtx);
        break;
      case ws_cnct:
        p.client_no_context_takeover = true;
        append_param(r, kClientNoCtx);
        break;
      case ws_sbits:
        // 8 is compressed with 9 bits (see the note at the top).
        p.server_max_window_bits = x.value;
        append_param(r, kServerBits, x.value);
        break;
      case ws_cbits:
        p.client_max_window_bits = x.value;
        append_param(r, kClientBits, x.value);
        break;
    }
  }
  out = p;
  response = std::move(r);
  return true;
}

}  // namespace

// ------------------------------------------------------------- negotiation

bool pmd_negotiate_server(std::string_view offers, const deflate_config& cfg, deflate_params& out,
                          std::string& response) {
  response.clear();
  if (cfg.ws_answer_rules) return ws_negotiate_server(offers, cfg, out, response);
  std::vector<extension> exts;
  if (!ext_parser(offers).parse(exts)) return false;
  for (const extension& ext : exts) {
    if (!iequals(ext.name, kExtName)) continue;
    pmd_values offer;
    std::string why;
    if (!read_pmd_params(ext, false, offer, why)) continue;  // RFC 7692 5: decline, try the next

    deflate_params p;
    std::string r(kExtName);
    // 7.1.1.1: the server may add server_no_context_takeover unasked.
    p.server_no_context_takeover = offer.server_no_ctx || cfg.server_no_context_takeover;
    if (p.server_no_context_takeover) append_param(r, kServerNoCtx);
    // 7.1.1.2: the server may demand it unasked; an offered one is a promise we
    // accept so our inflater can drop its window between messages.
    p.client_no_context_takeover = offer.client_no_ctx || cfg.client_no_context_takeover;
    if (p.client_no_context_takeover) append_param(r, kClientNoCtx);

    // 7.1.2.1: an offered value must be answered with the same or a smaller one;
    // unasked, the server may still announce a smaller window.
    const int our_server = chosen_bits(cfg.server_max_window_bits);
    if (offer.server_bits != 0) {
      p.server_max_window_bits = std::min(offer.server_bits, our_server);
      append_param(r, kServerBits, p.server_max_window_bits);
    } else if (our_server < 15) {
      p.server_max_window_bits = our_server;
      append_param(r, kServerBits, p.server_max_window_bits);
    }

    // 7.1.2.2: only answered when offered; a value in the offer is already the
    // client's promise, so echoing it (or less) is always consistent.
    const int our_client = chosen_bits(cfg.client_max_window_bits);
    if (offer.client_bits_present) {
      if (offer.client_bits != 0) {
        p.client_max_window_bits = std::min(offer.client_bits, our_client);
        append_param(r, kClientBits, p.client_max_window_bits);
      } else if (our_client < 15) {
        p.client_max_window_bits = our_client;
        append_param(r, kClientBits, p.client_max_window_bits);
      }
    }
    out = p;
    response = std::move(r);
    return true;
  }
  return false;
}

std::string pmd_client_offer(const deflate_config& cfg) {
  const pmd_values v = client_offer_values(cfg);
  // ws's order: server_no_context_takeover, client_no_context_takeover,
  // server_max_window_bits, client_max_window_bits.
  std::string s(kExtName);
  if (v.server_no_ctx) append_param(s, kServerNoCtx);
  if (v.client_no_ctx) append_param(s, kClientNoCtx);
  if (v.server_bits != 0) append_param(s, kServerBits, v.server_bits);
  if (v.client_bits != 0)
    append_param(s, kClientBits, v.client_bits);
  else if (v.client_bits_present)
    append_param(s, kClientBits);
  return s;
}

bool pmd_client_accept(std::string_view response, const deflate_config& cfg, deflate_params& out,
                       std::string& error) {
  error.clear();
  std::vector<extension> exts;
  if (!ext_parser(response).parse(exts)) {
    error = "malformed Sec-WebSocket-Extensions";
    return false;
  }
  // permessage-deflate answered more than once (a repeated element, or two
  // Sec-WebSocket-Extensions lines) is taken as ws takes it: every answer
  // must be well formed, and the first one's parameters are used.
  pmd_values answer;
  bool first = true;
  for (const extension& ext : exts) {
    // RFC 6455 4.1: an extension we did not offer fails the connection.
    if (!iequals(ext.name, kExtName)) {
      error = "unrequested extension " + std::string(ext.name);
      return false;
    }
    pmd_values v;
    if (!read_pmd_params(ext, true, v, error)) return false;
    if (first) answer = v;
    first = false;
  }
  if (first) {
    error = "no permessage-deflate in the answer";
    return false;
  }
  const pmd_values offer = client_offer_values(cfg);

  deflate_params p;
  if (answer.client_no_ctx && cfg.refuse_client_no_context_takeover) {
    error = "client_no_context_takeover answered but refused";
    return false;
  }
  // 7.1.1.1 / 7.1.1.2: both may appear whether offered or not.
  p.server_no_context_takeover = answer.server_no_ctx;
  // Dropping our own context is always allowed, so a wish in cfg holds even if
  // the server did not echo it; ws keeps its context unless answered.
  p.client_no_context_takeover =
      answer.client_no_ctx || (cfg.client_no_context_takeover && !cfg.ws_answer_rules);

  if (answer.server_bits != 0) {
    // 7.1.2.1: allowed unasked, but never above what we asked for (ws takes
    // it: a larger window only costs our inflater memory).
    if (!cfg.ws_answer_rules && offer.server_bits != 0 && answer.server_bits > offer.server_bits) {
      error = "server_max_window_bits above the offered value";
      return false;
    }
    p.server_max_window_bits = answer.server_bits;
  } else if (offer.server_bits != 0 && !cfg.ws_answer_rules) {
    // A server accepts server_max_window_bits only by answering it (7.1.2.1);
    // without it the server would use a window larger than we asked for.
    // ws inflates with 15 bits then, which takes whatever the server sends.
    error = "server_max_window_bits offered but not answered";
    return false;
  }

  if (answer.client_bits_present) {
    if (!offer.client_bits_present) {
      error = "client_max_window_bits answered but not offered";
      return false;
    }
    if (offer.client_bits != 0 && answer.client_bits > offer.client_bits) {
      error = "client_max_window_bits above the offered value";
      return false;
    }
    p.client_max_window_bits = answer.client_bits;
  } else if (offer.client_bits != 0) {
    // We promised this limit in the offer; keep to it.
    p.client_max_window_bits = offer.client_bits;
  }
  out = p;
  return true;
}

// ------------------------------------------------------------ zlib memory

namespace {

// zlib allocates through these so held_bytes() is exact: each block carries
// its size in front, and `opaque` points at the owner's running total.
constexpr std::size_t kAllocHeader = alignof(std::max_align_t);

voidpf counted_alloc(voidpf opaque, uInt items, uInt size) {
  if (size != 0 && items > (SIZE_MAX - kAllocHeader) / size) return Z_NULL;
  const std::size_t n = static_cast<std::size_t>(items) * size;
  auto* p = static_cast<unsigned char*>(std::malloc(n + kAllocHeader));
  if (p == nullptr) return Z_NULL;
  std::memcpy(p, &n, sizeof n);
  *static_cast<std::size_t*>(opaque) += n;
  return p + kAllocHeader;
}

void counted_free(voidpf opaque, voidpf address) {
  if (address == Z_NULL) return;
  auto* p = static_cast<unsigned char*>(address) - kAllocHeader;
  std::size_t n;
  std::memcpy(&n, p, sizeof n);
  *static_cast<std::size_t*>(opaque) -= n;
  std::free(p);
}

// The history kept while parked: exactly as large as what it holds.
struct history {
  std::unique_ptr<unsigned char[]> bytes;
  uInt size = 0;
  void assign_from(uInt n) {
    bytes.reset(n != 0 ? new unsigned char[n] : nullptr);
    size = n;
  }
  void clear() {
    bytes.reset();
    size = 0;
  }
};

}  // namespace

// ---------------------------------------------------------------- deflater

struct deflater::impl {
  z_stream zs{};
  bool active = false;  // zs holds a zlib state
  bool no_context_takeover = false;
  int bits = 15, level = 1, mem_level = 8;
  std::size_t zlib_bytes = 0;
  history hist;

  bool activate() {
    if (active) return true;
    zs = z_stream{};
    zs.zalloc = counted_alloc;
    zs.zfree = counted_free;
    zs.opaque = &zlib_bytes;
    if (deflateInit2(&zs, level, Z_DEFLATED, -bits, mem_level, Z_DEFAULT_STRATEGY) != Z_OK) return false;
    active = true;
    if (hist.size != 0) {
      // Raw deflate takes a dictionary right after init: the next message may
      // refer back into it exactly as it could into the window it came from.
      if (deflateSetDictionary(&zs, hist.bytes.get(), hist.size) != Z_OK) {
        deflateEnd(&zs);
        active = false;
        return false;
      }
      hist.clear();
    }
    return true;
  }

  void park() {
    if (!active) return;
    if (!no_context_takeover) {
      uInt n = 0;
      deflateGetDictionary(&zs, Z_NULL, &n);
      hist.assign_from(n);
      if (n != 0) deflateGetDictionary(&zs, hist.bytes.get(), &n);
    }
    deflateEnd(&zs);
    active = false;
  }

  // After a failure the stream (and any context) is gone.
  void drop() {
    if (active) deflateEnd(&zs);
    active = false;
    hist.clear();
  }
};

deflater::deflater(int window_bits, int level, int mem_level, bool no_context_takeover)
    : impl_(std::make_unique<impl>()) {
  impl_->no_context_takeover = no_context_takeover;
  impl_->bits = std::max(cfg_bits(window_bits), 9);  // see the note at the top
  impl_->level = level < 0 || level > 9 ? Z_DEFAULT_COMPRESSION : level;
  impl_->mem_level = mem_level < 1 || mem_level > 9 ? 8 : mem_level;
}

deflater::~deflater() {
  if (impl_->active) deflateEnd(&impl_->zs);
}

void deflater::park() { impl_->park(); }
bool deflater::parked() const { return !impl_->active; }
std::size_t deflater::held_bytes() const { return impl_->zlib_bytes + impl_->hist.size; }

bool deflater::compress(const std::uint8_t* data, std::size_t len, std::string& out) {
  // 7.2.3.6: one empty stored block minus its tail. Done by hand because zlib
  // answers a second consecutive sync flush without input with Z_BUF_ERROR
  // and no output; our stream is byte-aligned after every message anyway.
  if (len == 0) {
    out.push_back('\0');
    return true;
  }
  if (!impl_->activate()) return false;
  z_stream& zs = impl_->zs;
  const std::size_t start = out.size();
  std::size_t pos = start;
  // Small messages get the exact bound (cheap); large ones a guess that fits
  // typical text and then grow geometrically, so a 16 MB message does not
  // pin 18 MB of mostly unused capacity.
  std::size_t guess = len <= 65536 ? deflateBound(&zs, static_cast<uLong>(len)) + 16 : len / 2 + 4096;
  out.resize(start + guess);

  std::size_t remaining = len;
  const std::uint8_t* in = data;
  for (;;) {
    const std::size_t chunk = std::min<std::size_t>(remaining, UINT_MAX);
    zs.next_in = const_cast<Bytef*>(in);
    zs.avail_in = static_cast<uInt>(chunk);
    const bool last = chunk == remaining;
    const int flush = last ? Z_SYNC_FLUSH : Z_NO_FLUSH;
    for (;;) {
      if (pos == out.size()) out.resize(out.size() + std::max<std::size_t>(out.size() - start, 256));
      const std::size_t room = std::min<std::size_t>(out.size() - pos, UINT_MAX);
      zs.next_out = reinterpret_cast<Bytef*>(&out[pos]);
      zs.avail_out = static_cast<uInt>(room);
      const int rc = deflate(&zs, flush);
      pos += room - zs.avail_out;
      if (rc != Z_OK && rc != Z_BUF_ERROR) {
        out.resize(start);
        impl_->drop();
        return false;
      }
      // With room left over, zlib has consumed all input and finished the flush.
      if (zs.avail_out != 0) break;
    }
    in += chunk;
    remaining -= chunk;
    if (last) break;
  }
  if (pos - start < 4 || std::memcmp(&out[pos - 4], kTail, 4) != 0) {
    out.resize(start);
    impl_->drop();
    return false;
  }
  out.resize(pos - 4);
  if (impl_->no_context_takeover) deflateReset(&zs);
  return true;
}

struct deflater_pool::entry {
  int bits, level, mem_level;
  std::unique_ptr<deflater> d;
};

deflater_pool::deflater_pool() = default;
deflater_pool::~deflater_pool() = default;

deflater& deflater_pool::get(int window_bits, int level, int mem_level) {
  // Normalised as the deflater does, so equivalent settings share a stream.
  const int bits = std::max(cfg_bits(window_bits), 9);
  if (level < 0 || level > 9) level = Z_DEFAULT_COMPRESSION;
  if (mem_level < 1 || mem_level > 9) mem_level = 8;
  for (auto& e : all_)
    if (e.bits == bits && e.level == level && e.mem_level == mem_level) return *e.d;
  all_.push_back({bits, level, mem_level, std::make_unique<deflater>(bits, level, mem_level, true)});
  return *all_.back().d;
}

std::size_t deflater_pool::size() const { return all_.size(); }

std::size_t deflater_pool::held_bytes() const {
  std::size_t n = 0;
  for (const auto& e : all_) n += e.d->held_bytes();
  return n;
}

deflater_pool& thread_deflaters() {
  thread_local deflater_pool pool;
  return pool;
}

// ---------------------------------------------------------------- inflater

struct inflater::impl {
  z_stream zs{};
  bool active = false;  // zs holds a zlib state
  bool no_context_takeover = false;
  bool in_message = false;  // fed since the last finish()
  // The peer ended the message with a BFINAL block (7.2.3.4): the rest of the
  // message, including our 00 00 ff ff, is ignored.
  bool stream_ended = false;
  int bits = 15;
  std::size_t zlib_bytes = 0;
  history hist;
  const char* error = "";  // zlib's messages are static strings

  bool activate() {
    if (active) return true;
    zs = z_stream{};
    zs.zalloc = counted_alloc;
    zs.zfree = counted_free;
    zs.opaque = &zlib_bytes;
    if (inflateInit2(&zs, -bits) != Z_OK) {
      error = "out of memory";
      return false;
    }
    active = true;
    if (hist.size != 0) {
      if (inflateSetDictionary(&zs, hist.bytes.get(), hist.size) != Z_OK) {
        inflateEnd(&zs);
        active = false;
        error = "out of memory";
        return false;
      }
      hist.clear();
    }
    return true;
  }

  void park() {
    if (!active || in_message) return;
    if (!no_context_takeover) {
      // Only what was produced so far (whave), never a whole empty window.
      uInt n = 0;
      inflateGetDictionary(&zs, Z_NULL, &n);
      hist.assign_from(n);
      if (n != 0) inflateGetDictionary(&zs, hist.bytes.get(), &n);
    }
    inflateEnd(&zs);
    active = false;
  }

  // After a failed message: the context is no longer trustworthy.
  void drop() {
    if (active) inflateEnd(&zs);
    active = false;
    hist.clear();
    in_message = false;
    stream_ended = false;
  }

  // Called at the end of every message.
  void restart() {
    in_message = false;
    const bool ended = stream_ended;
    stream_ended = false;
    if (no_context_takeover) {
      inflateReset(&zs);
      return;
    }
    // Context takeover across a final block: zlib forgets the window on
    // reset, and parking carries it over as the dictionary anyway.
    if (ended) park();
  }

  inflater::result run(const std::uint8_t* data, std::size_t len, std::string& out, std::size_t max_size);
};

inflater::inflater(int window_bits, bool no_context_takeover) : impl_(std::make_unique<impl>()) {
  impl_->no_context_takeover = no_context_takeover;
  impl_->bits = cfg_bits(window_bits);
}

inflater::~inflater() {
  if (impl_->active) inflateEnd(&impl_->zs);
}

void inflater::park() { impl_->park(); }
bool inflater::parked() const { return !impl_->active; }
bool inflater::mid_message() const { return impl_->in_message; }
const char* inflater::error_message() const { return impl_->error; }
std::size_t inflater::held_bytes() const { return impl_->zlib_bytes + impl_->hist.size; }

inflater::result inflater::impl::run(const std::uint8_t* data, std::size_t len, std::string& out,
                                     std::size_t max_size) {
  if (stream_ended) return result::ok;
  if (!activate()) {
    drop();
    return result::error;
  }
  in_message = true;
  std::size_t pos = out.size();
  if (pos > max_size) return result::too_big;
  // Never hold more than max_size + 1 bytes: the extra byte tells "exactly
  // max_size" apart from "more".
  const std::size_t cap = max_size == SIZE_MAX ? max_size : max_size + 1;

  // The size step starts near the input size and doubles within this call.
  // It must not follow out.size(): a message arriving in many small frames
  // would then zero-fill the whole buffer on every feed (quadratic).
  // std::string already grows its capacity geometrically underneath.
  std::size_t step = std::max<std::size_t>(std::min<std::size_t>(len, SIZE_MAX / 8) * 4, 512);
  std::size_t remaining = len;
  const std::uint8_t* in = data;
  result res = result::ok;
  for (;;) {
    const std::size_t chunk = std::min<std::size_t>(remaining, UINT_MAX);
    zs.next_in = const_cast<Bytef*>(in);
    zs.avail_in = static_cast<uInt>(chunk);
    for (;;) {
      if (pos == out.size()) {
        if (out.size() >= cap) {
          res = result::too_big;
          break;
        }
        grow_capped(out, out.size() + std::min(step, cap - out.size()), cap);
        if (step < (std::size_t{1} << 30)) step *= 2;
      }
      const std::size_t room = std::min<std::size_t>(out.size() - pos, UINT_MAX);
      zs.next_out = reinterpret_cast<Bytef*>(&out[pos]);
      zs.avail_out = static_cast<uInt>(room);
      const int rc = inflate(&zs, Z_SYNC_FLUSH);
      pos += room - zs.avail_out;
      if (pos > max_size) {
        res = result::too_big;
        break;
      }
      if (rc == Z_STREAM_END) {
        stream_ended = true;
        break;
      }
      if (rc == Z_BUF_ERROR) {
        // No progress: either everything is consumed or it needs more room.
        if (zs.avail_out == 0) continue;
        break;
      }
      if (rc != Z_OK) {
        // As Node's zlib binding words it: zlib's message when it has one.
        error = zs.msg ? zs.msg : rc == Z_MEM_ERROR ? "out of memory" : "zlib error";
        res = result::error;
        break;
      }
      if (zs.avail_in == 0 && zs.avail_out != 0) break;
    }
    if (res != result::ok || stream_ended) break;
    in += chunk;
    remaining -= chunk;
    if (remaining == 0) break;
  }
  out.resize(std::min(pos, out.size()));
  // The connection is going away; leave the object usable for a new stream anyway.
  if (res != result::ok) drop();
  return res;
}

inflater::result inflater::feed(const std::uint8_t* data, std::size_t len, std::string& out,
                                std::size_t max_size) {
  return impl_->run(data, len, out, max_size);
}

inflater::result inflater::finish(std::string& out, std::size_t max_size) {
  result r = impl_->run(kTail, sizeof kTail, out, max_size);
  if (r != result::ok) return r;
  // After 00 00 ff ff a well-formed message leaves zlib between blocks
  // (data_type bit 128); otherwise the message was cut inside a block and the
  // tail was eaten as data, which would poison the next message.
  if (!impl_->stream_ended && (impl_->zs.data_type & 128) == 0) {
    // zlib sees no error here (it waits for the rest of the block); Node's
    // words for a stream that stops short.
    impl_->error = "unexpected end of file";
    impl_->drop();
    return result::error;
  }
  impl_->restart();
  return result::ok;
}

}  // namespace wirehub
