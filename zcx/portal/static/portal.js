// ZCX portal: connect an EIP-1193 wallet (window.ethereum) and sign the forms' calls in it.
// Each form is checked here first, then by the server's preview (which also dry-runs the call);
// only then is the call encoded (ethers v6, served from npm) and sent with eth_sendTransaction.
// The server never sees a key and never builds a signed transaction.
"use strict";

(function () {
  const M = JSON.parse(document.getElementById("zcx-messages").textContent);
  const ADDRESS = /^0x[0-9a-fA-F]{40}$/;
  const ZERO = "0x0000000000000000000000000000000000000000";
  const DATE = /^\d{4}-\d{2}-\d{2}$/;

  function fmt(key, values) {
    let text = M[key] || key;
    for (const [k, v] of Object.entries(values || {})) text = text.split("{" + k + "}").join(String(v));
    return text;
  }

  function provider() { return window.ethereum || null; }

  async function accounts(ask) {
    const eth = provider();
    if (!eth) return [];
    return eth.request({ method: ask ? "eth_requestAccounts" : "eth_accounts" });
  }

  function showWallet(list) {
    const status = document.getElementById("wallet-status");
    if (!status) return;
    status.textContent = list && list.length ? fmt("wallet_connected", { address: list[0].slice(0, 8) + "…" + list[0].slice(-6) }) : "";
    status.title = list && list.length ? list[0] : "";
  }

  // -- client-side checks (the same rules as zcx/portal/forms.py)

  function amountProblem(text, maxUnits, decimalsKey) {
    const value = text.replace(/,/g, "").trim();
    if (!/^[0-9]*\.?[0-9]+$/.test(value) && !/^[0-9]+\.$/.test(value)) return ["err_amount_number", {}];
    const [whole, frac = ""] = value.split(".");
    if (frac.replace(/0+$/, "").length > 3) return [decimalsKey || "err_amount_decimals", {}];
    const units = BigInt(whole || "0") * 1000n + BigInt((frac + "000").slice(0, 3));
    if (units <= 0n) return ["err_amount_positive", {}];
    if (maxUnits !== undefined && units > BigInt(maxUnits)) {
      const max = BigInt(maxUnits);
      return ["err_amount_balance", { balance: (max / 1000n).toString() + "." + (max % 1000n).toString().padStart(3, "0") }];
    }
    return null;
  }

  function fieldProblem(input, form, sender) {
    const value = (input.type === "checkbox" ? "" : input.value).trim();
    const rule = input.dataset.rule;
    const requiredIf = input.dataset.requiredIf;
    const required = input.required || (requiredIf && form.elements[requiredIf] && form.elements[requiredIf].checked);
    if (!value) return required ? ["err_required", {}] : null;
    if (input.maxLength > 0 && value.length > input.maxLength) return ["err_too_long", { max: input.maxLength }];
    if (rule === "address") {
      if (!ADDRESS.test(value)) return ["err_address", {}];
      if (value.toLowerCase() === ZERO) return ["err_zero_address", {}];
      if (input.dataset.notSelf && sender && value.toLowerCase() === sender.toLowerCase()) return ["err_self", {}];
    }
    if (rule === "amount") return amountProblem(value, input.dataset.maxUnits, input.dataset.decimalsMessage);
    if (rule === "date") {
      if (!DATE.test(value) || Number.isNaN(Date.parse(value + "T00:00:00Z"))) return ["err_date", {}];
      const after = input.dataset.after && form.elements[input.dataset.after];
      if (after && DATE.test(after.value) && value < after.value) return ["err_date_order", {}];
    }
    if (rule === "integer") {
      const max = Number(input.dataset.max || Number.MAX_SAFE_INTEGER);
      const min = Number(input.dataset.min || 1);
      if (!/^[0-9]+$/.test(value) || Number(value) < min || Number(value) > max) {
        return input.dataset.min !== undefined
          ? ["err_range", { min: min.toLocaleString("en"), max: max.toLocaleString("en") }]
          : ["err_integer", { max: max.toLocaleString("en") }];
      }
    }
    if (rule === "datetime") {
      const match = /^\d{4}-\d{2}-\d{2}T\d{2}:(\d{2})(:00)?$/.exec(value);
      if (!match) return ["err_datetime", {}];
      if (match[1] !== "00" && match[1] !== "30") return ["err_slot_grid", { minutes: 30 }];
    }
    if (rule === "meter" && new TextEncoder().encode(value).length > 32) return ["err_meter_id", {}];
    return null;
  }

  function clearErrors(form) {
    form.querySelectorAll("[data-error-for]").forEach((p) => { p.textContent = ""; });
    form.querySelectorAll("[aria-invalid]").forEach((el) => el.removeAttribute("aria-invalid"));
  }

  function showErrors(form, errors) {
    let first = null;
    for (const [name, message] of Object.entries(errors)) {
      const p = form.querySelector(`[data-error-for="${name}"]`);
      const input = form.elements[name];
      if (p) p.textContent = message;
      if (input && input.setAttribute) { input.setAttribute("aria-invalid", "true"); first = first || input; }
    }
    if (first) first.focus();
  }

  function status(form, text, kind) {
    const p = form.querySelector(".form-status");
    p.textContent = text;
    p.className = "form-status" + (kind ? " " + kind : "");
  }

  function fields(form) {
    const out = {};
    for (const el of form.elements) {
      if (!el.name) continue;
      out[el.name] = el.type === "checkbox" ? (el.checked ? "1" : "") : el.value;
    }
    return out;
  }

  async function waitForReceipt(hash) {
    for (let i = 0; i < 600; i++) {
      const receipt = await provider().request({ method: "eth_getTransactionReceipt", params: [hash] });
      if (receipt) return receipt;
      await new Promise((r) => setTimeout(r, 500));
    }
    throw new Error("no receipt after 5 minutes");
  }

  async function submit(event) {
    event.preventDefault();
    const form = event.currentTarget;
    if (form.dataset.busy) return;
    clearErrors(form);
    status(form, "");
    if (!provider()) { status(form, M.no_wallet || fmt("err_not_connected"), "bad"); return; }
    const list = await accounts(false);
    const sender = list[0];
    if (!sender) { status(form, fmt("err_not_connected"), "bad"); return; }
    const errors = {};
    for (const input of form.querySelectorAll("[data-rule]")) {
      const problem = fieldProblem(input, form, sender);
      if (problem) errors[input.name] = fmt(problem[0], { field: fmt("field_" + input.name), ...problem[1] });
    }
    if (Object.keys(errors).length) { showErrors(form, errors); status(form, fmt("err_form"), "bad"); return; }
    if (form.dataset.account && form.dataset.account.toLowerCase() !== sender.toLowerCase()) {
      status(form, fmt("js_wrong_account", { wallet: sender }), "bad");
      return;
    }
    form.dataset.busy = "1";
    try {
      status(form, fmt("js_checking"));
      const response = await fetch(form.dataset.preview, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ sender, fields: fields(form) }),
      });
      const answer = await response.json();
      if (!answer.ok) {
        showErrors(form, answer.errors || {});
        status(form, answer.message || fmt("err_form"), "bad");
        return;
      }
      const call = answer.call;
      const iface = new window.ethers.Interface(["function " + call.signature]);
      const data = iface.encodeFunctionData(call.method, call.args);
      status(form, fmt("js_confirm_wallet"));
      let hash;
      try {
        hash = await provider().request({ method: "eth_sendTransaction", params: [{ from: sender, to: call.to, data }] });
      } catch (err) {
        if (err && err.code === 4001) { status(form, fmt("js_rejected"), "bad"); return; }
        throw err;
      }
      status(form, fmt("js_waiting", { tx: hash }));
      const receipt = await waitForReceipt(hash);
      if (receipt.status !== "0x1") throw new Error("reverted in block " + parseInt(receipt.blockNumber, 16));
      status(form, fmt("js_done", { block: parseInt(receipt.blockNumber, 16), tx: hash }), "good");
      form.dataset.done = hash;
      setTimeout(() => window.location.reload(), 1500);
    } catch (err) {
      status(form, fmt("js_failed", { error: (err && err.message) || String(err) }), "bad");
    } finally {
      delete form.dataset.busy;
    }
  }

  document.addEventListener("DOMContentLoaded", async () => {
    document.querySelectorAll("form[data-form]").forEach((form) => form.addEventListener("submit", submit));
    const button = document.getElementById("connect");
    if (button) {
      button.addEventListener("click", async () => {
        if (!provider()) { document.getElementById("wallet-status").textContent = M.no_wallet; return; }
        const list = await accounts(true);
        showWallet(list);
        if (list[0] && !window.location.pathname.startsWith("/member/") && !window.location.pathname.startsWith("/operator")) {
          window.location.assign("/member/" + list[0]);
        }
      });
    }
    if (provider()) {
      try { showWallet(await accounts(false)); } catch (_) { /* not connected yet */ }
      if (provider().on) provider().on("accountsChanged", showWallet);
    }
  });
})();
