// Live updates without a framework: every few seconds ask /explorer/head for the head block; when
// a block was mined since the page was read, fetch the page again and swap its content in place.
(function () {
  "use strict";
  const body = document.body;
  const pause = 1000 * Number(body.dataset.pollSeconds || 2);
  const live = document.getElementById("live");
  let shown = Number(body.dataset.block);

  async function refresh() {
    const answer = await fetch(window.location.href, { cache: "no-store" });
    if (!answer.ok) return;
    const page = new DOMParser().parseFromString(await answer.text(), "text/html");
    const fresh = page.getElementById("content");
    if (!fresh) return;
    document.getElementById("content").replaceWith(fresh);
    shown = Number(fresh.dataset.block);
    body.dataset.block = String(shown);
    document.getElementById("head-block").textContent = String(shown);
  }

  async function follow() {
    try {
      const head = await (await fetch("/explorer/head", { cache: "no-store" })).json();
      live.classList.add("on");
      if (head.block !== shown) await refresh();
    } catch (error) {
      live.classList.remove("on");  // the gateway is away: try again at the next tick
    }
    window.setTimeout(follow, pause);
  }

  window.setTimeout(follow, pause);
})();
