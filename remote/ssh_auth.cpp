// Agent → key file → password authentication, with a one-line summary of what failed.
#include "ssh_auth.h"

#include <libssh/callbacks.h>
#include <openssl/crypto.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <vector>

#include "error.h"

namespace moe::remote {

namespace {

void wipe(std::string& s) {
  if (!s.empty()) OPENSSL_cleanse(s.data(), s.size());
  s.clear();
}

std::string expand_home(const std::string& path) {
  if (path.size() >= 1 && path[0] == '~' && (path.size() == 1 || path[1] == '/')) {
    const char* home = std::getenv("HOME");
    if (home) return std::string(home) + path.substr(1);
  }
  return path;
}

// libssh's passphrase callback: asks the caller's prompt, copies into libssh's buffer, wipes ours.
struct PassphraseContext {
  const Prompts* prompts = nullptr;
  bool asked = false;
};

int passphrase_callback(const char* prompt, char* buf, size_t len, int /*echo*/, int /*verify*/,
                        void* userdata) {
  auto* ctx = static_cast<PassphraseContext*>(userdata);
  if (!ctx || !ctx->prompts || !ctx->prompts->passphrase || len == 0) return -1;
  ctx->asked = true;
  std::optional<std::string> p = ctx->prompts->passphrase(prompt ? prompt : "Passphrase: ");
  if (!p || p->size() + 1 > len) {
    if (p) wipe(*p);
    return -1;
  }
  std::memcpy(buf, p->c_str(), p->size() + 1);
  wipe(*p);
  return 0;
}

std::string join(const std::vector<std::string>& parts) {
  std::string s;
  for (size_t i = 0; i < parts.size(); ++i) s += (i ? "; " : "") + parts[i];
  return s;
}

}  // namespace

void authenticate(ssh_session session, const HostEntry& host, const ConnectOptions& options) {
  char* user_c = nullptr;
  std::string user = "?";
  if (ssh_options_get(session, SSH_OPTIONS_USER, &user_c) == SSH_OK && user_c) {
    user = user_c;
    ssh_string_free_char(user_c);
  }
  const std::string who = host.host + ": authentication as '" + user + "' failed";

  int rc = ssh_userauth_none(session, nullptr);
  if (rc == SSH_AUTH_SUCCESS) return;
  if (rc == SSH_AUTH_ERROR) throw moe::Error(who + ": " + ssh_get_error(session));
  const int methods = ssh_userauth_list(session, nullptr);
  std::vector<std::string> tried;

  if (methods & SSH_AUTH_METHOD_PUBLICKEY) {
    // 1. ssh-agent.
    if (options.use_agent && std::getenv("SSH_AUTH_SOCK")) {
      rc = ssh_userauth_agent(session, nullptr);
      if (rc == SSH_AUTH_SUCCESS) return;
      if (rc == SSH_AUTH_ERROR) throw moe::Error(who + ": agent: " + ssh_get_error(session));
      tried.push_back("agent (no key accepted)");
    } else {
      tried.push_back(options.use_agent ? "agent (SSH_AUTH_SOCK not set)" : "agent (disabled)");
    }
    // 2. Key files.
    PassphraseContext ctx{&options.prompts};
    if (!host.key.empty()) {
      const std::string path = expand_home(host.key);
      if (!std::filesystem::exists(path)) {
        tried.push_back("key " + path + " (file not found)");
      } else {
        ssh_key key = nullptr;
        rc = ssh_pki_import_privkey_file(path.c_str(), nullptr, passphrase_callback, &ctx, &key);
        if (rc != SSH_OK) {
          tried.push_back("key " + path + (ctx.asked ? " (wrong or no passphrase)" : " (unreadable)"));
        } else {
          rc = ssh_userauth_publickey(session, nullptr, key);
          ssh_key_free(key);
          if (rc == SSH_AUTH_SUCCESS) return;
          if (rc == SSH_AUTH_ERROR) throw moe::Error(who + ": key " + path + ": " + ssh_get_error(session));
          tried.push_back("key " + path + " (rejected by the server)");
        }
      }
    } else {
      struct ssh_callbacks_struct cb {};
      cb.userdata = &ctx;
      cb.auth_function = passphrase_callback;
      ssh_callbacks_init(&cb);
      ssh_set_callbacks(session, &cb);
      rc = ssh_userauth_publickey_auto(session, nullptr, nullptr);
      // libssh keeps the pointer; swap in a static struct without callbacks so none dangles.
      static struct ssh_callbacks_struct no_callbacks = [] {
        struct ssh_callbacks_struct c {};
        ssh_callbacks_init(&c);
        return c;
      }();
      ssh_set_callbacks(session, &no_callbacks);
      if (rc == SSH_AUTH_SUCCESS) return;
      if (rc == SSH_AUTH_ERROR) throw moe::Error(who + ": key files: " + ssh_get_error(session));
      tried.push_back("default key files and IdentityFile (none accepted)");
    }
  } else {
    tried.push_back("public key (not offered by the server)");
  }

  // 3. Password.
  if (!(methods & SSH_AUTH_METHOD_PASSWORD)) {
    tried.push_back("password (not allowed by the server)");
  } else if (!options.prompts.password) {
    tried.push_back("password (no prompt available)");
  } else {
    std::optional<std::string> pw = options.prompts.password(user + "@" + host.host + "'s password: ");
    if (!pw) {
      tried.push_back("password (not given)");
    } else {
      rc = ssh_userauth_password(session, nullptr, pw->c_str());
      wipe(*pw);
      if (rc == SSH_AUTH_SUCCESS) return;
      if (rc == SSH_AUTH_ERROR) throw moe::Error(who + ": password: " + ssh_get_error(session));
      tried.push_back("password (rejected)");
    }
  }
  throw moe::Error(who + ": tried " + join(tried));
}

}  // namespace moe::remote
