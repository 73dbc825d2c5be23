// ecg12 live view: SSE -> ring buffers -> canvas in the standard 3x4 layout + lead II strip.
"use strict";
(function () {
  const LEADS = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"];
  const LAYOUT = [["I", "II", "III"], ["aVR", "aVL", "aVF"], ["V1", "V2", "V3"],
                  ["V4", "V5", "V6"]];
  const WINDOW_S = 10, MM_PER_S = 25, MM_PER_MV = 10, CLIP_MV = 4;
  const PAPER_W_MM = 265, ROW_MM = 40, PAPER_H_MM = 4 * ROW_MM + 10, X0_MM = 15;
  const SHADE = { high_uncertainty: "rgba(255,127,14,0.28)", poor_quality: "rgba(214,39,40,0.28)",
                  gap: "rgba(120,120,120,0.30)" };
  const KEEP_S = 12;
  const st = { t: [], leads: [], std: [], flags: [], blocks: 0, samples: 0, lastT: null,
               frames: 0, status: null, connected: false, ended: false };
  window.ecg12 = st;

  const canvas = document.getElementById("ecg");
  const ctx = canvas.getContext("2d");
  const $ = (id) => document.getElementById(id);

  function fmt(v, d) { return v === null || v === undefined ? "--" : Number(v).toFixed(d); }

  function onBlock(m) {
    const dt = 1 / m.fs_hz;
    for (let i = 0; i < m.leads.length; i++) {
      st.t.push(m.t_s + i * dt);
      st.leads.push(m.leads[i]);
      st.std.push(m.std[i]);
    }
    st.blocks += 1;
    st.samples += m.leads.length;
    st.lastT = st.t[st.t.length - 1];
    const cut = st.lastT - KEEP_S;
    let k = 0;
    while (k < st.t.length && st.t[k] < cut) k++;
    if (k > 0) { st.t.splice(0, k); st.leads.splice(0, k); st.std.splice(0, k); }
  }

  function onFlag(m) {
    const kind = m.kind || "gap";
    // a gap arrives twice: from the source at once, from the pipeline with its block
    const key = kind === "gap" ? "gap:" + Number(m.start_s).toFixed(2)
      : [kind, m.start_s, String(m.leads)].join(":");
    if (st.flags.some((f) => f.key === key)) return;
    m.key = key;
    m.seenAtT = st.lastT === null ? -1 : st.lastT;  // how far the traces were when it came
    st.flags.push(m);
    const li = document.createElement("li");
    li.className = "flag kind-" + kind;
    li.dataset.kind = kind;
    const leads = m.leads && m.leads.length && m.leads.length < 12 ? m.leads.join(",")
      : "all leads";
    li.textContent = `${kind.replace("_", " ")} ${fmt(m.start_s, 1)}\u2013${fmt(m.end_s, 1)} s ` +
                     `(${leads})` + (m.detail ? ` \u2014 ${m.detail}` : "");
    const ul = $("flags");
    ul.insertBefore(li, ul.firstChild);
    while (ul.children.length > 100) ul.removeChild(ul.lastChild);
  }

  function onStatus(m) {
    st.status = m;
    st.connected = !!m.connected;
    $("hr").textContent = fmt(m.hr_bpm, 0);
    $("qrs").textContent = fmt(m.qrs_ms, 0);
    $("conn").textContent = m.connected ? "receiving" : "no data";
    $("conn").className = "v " + (m.connected ? "on" : "off");
    $("rate").textContent = fmt(m.rate_hz, 1);
    $("gaps").textContent = m.gaps;
    const d = m.device || {};
    $("loss").textContent = (d.lost_samples || 0) + (d.lost_frames ? ` (${d.lost_frames} frames)` : "");
    $("delay").textContent = fmt(m.delay_s, 2);
    $("tnow").textContent = fmt(m.t_s, 1);
  }

  function connect() {
    const es = new EventSource("events" + window.location.search);
    es.onmessage = (ev) => {
      const m = JSON.parse(ev.data);
      if (m.type === "block") onBlock(m);
      else if (m.type === "flag" || m.type === "gap") onFlag(m);
      else if (m.type === "status") onStatus(m);
      else if (m.type === "end") {
        st.ended = true;
        $("conn").textContent = "session ended";
        $("conn").className = "v off";
      }
    };
    es.onerror = () => {
      if (!st.ended) { $("conn").textContent = "link lost"; $("conn").className = "v off"; }
    };
  }

  function grid(px) {
    const W = canvas.width, H = canvas.height;
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, W, H);
    for (let mm = 0; mm <= Math.max(PAPER_W_MM, PAPER_H_MM); mm++) {
      const major = mm % 5 === 0;
      if (!major && px < 3) continue;
      ctx.strokeStyle = major ? "rgba(230,110,110,0.7)" : "rgba(255,190,190,0.6)";
      ctx.lineWidth = major ? 1 : 0.5;
      ctx.beginPath();
      if (mm <= PAPER_W_MM) { ctx.moveTo(mm * px, 0); ctx.lineTo(mm * px, H); }
      if (mm <= PAPER_H_MM) { ctx.moveTo(0, mm * px); ctx.lineTo(W, mm * px); }
      ctx.stroke();
    }
  }

  function drawCell(px, lead, row, t0, t1, tOrigin) {
    const li = LEADS.indexOf(lead);
    const base = (ROW_MM / 2 + row * ROW_MM) * px;
    const X = (t) => (X0_MM + (t - tOrigin) * MM_PER_S) * px;
    const Y = (v) => base - Math.max(-CLIP_MV, Math.min(CLIP_MV, v)) * MM_PER_MV * px;
    for (const f of st.flags) {
      const a = Math.max(t0, f.start_s), b = Math.min(t1, f.end_s);
      if (b <= a || (f.leads && f.leads.length && !f.leads.includes(lead))) continue;
      ctx.fillStyle = SHADE[f.kind || "gap"] || "rgba(148,103,189,0.3)";
      ctx.fillRect(X(a), base - 15 * px, Math.max(1, X(b) - X(a)), 30 * px);
    }
    // +-2 std band, then the mean
    ctx.fillStyle = "rgba(31,119,180,0.28)";
    let open = false;
    const up = [], down = [];
    const flush = () => {
      if (up.length > 1) {
        ctx.beginPath();
        ctx.moveTo(up[0][0], up[0][1]);
        for (const p of up) ctx.lineTo(p[0], p[1]);
        for (let i = down.length - 1; i >= 0; i--) ctx.lineTo(down[i][0], down[i][1]);
        ctx.closePath();
        ctx.fill();
      }
      up.length = 0; down.length = 0;
    };
    for (let i = 0; i < st.t.length; i++) {
      const t = st.t[i];
      if (t < t0 || t >= t1) continue;
      const y = st.leads[i][li], s = st.std[i][li];
      if (y === null || s === null) { flush(); continue; }
      up.push([X(t), Y(y + 2 * s)]); down.push([X(t), Y(y - 2 * s)]);
    }
    flush();
    ctx.strokeStyle = "#000";
    ctx.lineWidth = 1.2;
    ctx.beginPath();
    for (let i = 0; i < st.t.length; i++) {
      const t = st.t[i];
      if (t < t0 || t >= t1) continue;
      const y = st.leads[i][li];
      if (y === null) { open = false; continue; }
      if (!open) { ctx.moveTo(X(t), Y(y)); open = true; } else ctx.lineTo(X(t), Y(y));
    }
    ctx.stroke();
    ctx.fillStyle = "#000";
    ctx.font = `${Math.round(3.5 * px)}px sans-serif`;
    ctx.fillText(lead === "II" && t1 - t0 > 3 ? "II (rhythm)" : lead, X(t0) + px, base - 11 * px);
  }

  function calibration(px, row) {
    const base = (ROW_MM / 2 + row * ROW_MM) * px;
    ctx.strokeStyle = "#000";
    ctx.lineWidth = 1.2;
    ctx.beginPath();
    ctx.moveTo(2 * px, base); ctx.lineTo(4 * px, base); ctx.lineTo(4 * px, base - 10 * px);
    ctx.lineTo(9 * px, base - 10 * px); ctx.lineTo(9 * px, base); ctx.lineTo(11 * px, base);
    ctx.stroke();
  }

  function frame() {
    const cssW = canvas.clientWidth || 1300;
    const px = cssW / PAPER_W_MM;
    const wantW = Math.round(cssW), wantH = Math.round(PAPER_H_MM * px);
    if (canvas.width !== wantW || canvas.height !== wantH) {
      canvas.width = wantW; canvas.height = wantH;
    }
    grid(px);
    if (st.lastT !== null) {
      const tOrigin = st.lastT - WINDOW_S;
      LAYOUT.forEach((names, col) => {
        const t0 = tOrigin + col * WINDOW_S / 4, t1 = t0 + WINDOW_S / 4;
        names.forEach((lead, row) => drawCell(px, lead, row, t0, t1, tOrigin));
      });
      drawCell(px, "II", 3, tOrigin, st.lastT + 1e-9, tOrigin);
    }
    for (let r = 0; r < 4; r++) calibration(px, r);
    st.frames += 1;
    window.requestAnimationFrame(frame);
  }

  connect();
  window.requestAnimationFrame(frame);
})();
