// The page of `ebook2audio serve`: it speaks only the HTTP API (docs/web.md). Every text from a book
// goes into the page with textContent, never as HTML.
"use strict";

const $ = (sel, root = document) => root.querySelector(sel);
const state = { engines: [], voices: [], books: new Map(), jobs: new Map() };
const CLONING_ENGINES = new Set(["xtts"]); // they read with the voice of an uploaded recording (--voice-sample)

async function api(path, options = {}) {
  const res = await fetch(path, options);
  if (!res.ok) {
    let text = res.status + " " + res.statusText;
    try { text = (await res.json()).error || text; } catch (e) { /* not JSON */ }
    throw new Error(text);
  }
  return res;
}
const postJSON = (path, body) => api(path, {
  method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
});

function hms(seconds) {
  const t = Math.max(0, Math.round(seconds));
  const h = Math.floor(t / 3600), m = Math.floor((t % 3600) / 60), s = t % 60;
  return (h ? h + ":" + String(m).padStart(2, "0") : String(m)) + ":" + String(s).padStart(2, "0");
}

// ---- books -------------------------------------------------------------------------------------

function ranges(indexes) {  // [1,2,3,7] -> "1-3,7"
  const out = [];
  for (let i = 0; i < indexes.length; i++) {
    let j = i;
    while (j + 1 < indexes.length && indexes[j + 1] === indexes[j] + 1) j++;
    out.push(i === j ? String(indexes[i]) : indexes[i] + "-" + indexes[j]);
    i = j;
  }
  return out.join(",");
}

function fillVoices(card) {
  const engine = $(".engine", card).value;
  const select = $(".voice", card);
  const lang = ($(".language", card).value || card.dataset.language || "").toLowerCase().slice(0, 2);
  const clones = CLONING_ENGINES.has(engine);
  $(".sample-field", card).hidden = !clones;
  $(".voice-field", card).hidden = clones;
  select.replaceChildren(new Option("default for the language", ""));
  for (const v of state.voices) {
    if (v.engine !== engine) continue;
    if (lang && !v.language.toLowerCase().startsWith(lang)) continue;
    select.add(new Option(v.name + (v.description ? " (" + v.description + ")" : ""), v.name));
  }
}

function selectedChapters(card) {
  const boxes = [...card.querySelectorAll(".chapter-check")];
  const chosen = boxes.filter((b) => b.checked).map((b) => Number(b.value));
  $(".selected-count", card).textContent = "(" + chosen.length + " of " + boxes.length + " selected)";
  return { chosen, all: chosen.length === boxes.length };
}

function settingsOf(card) {
  return {
    book_id: card.dataset.bookId,
    language: $(".language", card).value.trim(),
    engine: $(".engine", card).value,
    voice: CLONING_ENGINES.has($(".engine", card).value) ? "" : $(".voice", card).value,
    voice_sample: CLONING_ENGINES.has($(".engine", card).value) ? card.dataset.voiceSample || "" : "",
    speed: Number($(".speed", card).value) || 1,
  };
}

async function uploadSample(card, file, status) {
  delete card.dataset.voiceSample;
  if (!file) return;
  const form = new FormData();
  form.append("file", file, file.name);
  status.textContent = "checking the voice sample...";
  try {
    const data = await (await api("/api/voice-samples", { method: "POST", body: form })).json();
    card.dataset.voiceSample = data.sample;
    status.textContent = "voice sample " + file.name + ": " + data.seconds.toFixed(1) + " s";
  } catch (e) {
    status.textContent = "refused: " + e.message;
  }
}

function renderBook(book) {
  if (state.books.has(book.id)) return;
  state.books.set(book.id, book);
  const card = $("#book-template").content.firstElementChild.cloneNode(true);
  const info = book.info || {};
  card.dataset.bookId = book.id;
  card.dataset.language = info.language || "";
  $(".title", card).textContent = info.title || book.name;
  $(".authors", card).textContent = (info.authors || []).join(", ");
  const words = info.words || 0;
  $(".meta", card).textContent = book.name + " · " + (info.format || "?") + " · " + (info.chapters || []).length +
    " chapters · " + words.toLocaleString() + " words · about " + hms(info.seconds || 0) + " of audio";
  $(".error", card).textContent = book.error ? "cannot read this book: " + book.error : "";
  if (info.cover) {
    const img = $(".cover", card);
    img.src = "/api/books/" + book.id + "/cover";
    img.hidden = false;
  }
  const body = $(".chapters tbody", card);
  for (const ch of info.chapters || []) {
    const row = body.insertRow();
    const box = document.createElement("input");
    box.type = "checkbox"; box.checked = true; box.value = ch.index; box.className = "chapter-check";
    box.addEventListener("change", () => selectedChapters(card));
    const label = document.createElement("label");
    label.append(box, " " + ch.index + ". " + (ch.title || "(untitled)"));
    row.insertCell().append(label);
    const w = row.insertCell(); w.className = "num"; w.textContent = ch.words + " words";
    const d = row.insertCell(); d.className = "num"; d.textContent = "~" + hms(ch.seconds);
  }
  selectedChapters(card);
  $(".all", card).addEventListener("click", () => { card.querySelectorAll(".chapter-check").forEach((b) => { b.checked = true; }); selectedChapters(card); });
  $(".none", card).addEventListener("click", () => { card.querySelectorAll(".chapter-check").forEach((b) => { b.checked = false; }); selectedChapters(card); });
  const engine = $(".engine", card);
  for (const name of state.engines) engine.add(new Option(name, name));
  engine.addEventListener("change", () => fillVoices(card));
  $(".language", card).addEventListener("change", () => fillVoices(card));
  fillVoices(card);
  const status = $(".book-status", card);
  const sample = $(".voice-sample", card);
  sample.addEventListener("change", () => uploadSample(card, sample.files[0], status));
  $(".preview-btn", card).addEventListener("click", async (ev) => {
    const button = ev.currentTarget;
    button.disabled = true;
    status.textContent = "synthesising a preview...";
    try {
      const res = await postJSON("/api/preview", settingsOf(card));
      const audio = $(".preview-audio", card);
      if (audio.src) URL.revokeObjectURL(audio.src);
      audio.src = URL.createObjectURL(await res.blob());
      audio.hidden = false;
      status.textContent = "";
      audio.play().catch(() => {});
    } catch (e) {
      status.textContent = "preview failed: " + e.message;
    } finally {
      button.disabled = false;
    }
  });
  $(".convert-btn", card).addEventListener("click", async () => {
    const { chosen, all } = selectedChapters(card);
    if (!chosen.length) { status.textContent = "select at least one chapter"; return; }
    const body = { ...settingsOf(card), format: $(".format", card).value, chapters: all ? "" : ranges(chosen) };
    try {
      const res = await postJSON("/api/jobs", body);
      const job = await res.json();
      status.textContent = (res.status === 200 ? "already queued or done as job " : "queued as job ") + job.id;
      renderJob(job);
    } catch (e) {
      status.textContent = "not queued: " + e.message;
    }
  });
  $("#books").append(card);
  $("#no-books").hidden = true;
}

async function upload(files) {
  if (!files.length) return;
  const form = new FormData();
  for (const f of files) form.append("files", f, f.name);
  $("#add-status").textContent = "reading " + files.length + " book(s)...";
  try {
    const data = await (await api("/api/books", { method: "POST", body: form })).json();
    data.books.forEach(renderBook);
    $("#add-status").textContent = "added " + data.books.length + " book(s)";
  } catch (e) {
    $("#add-status").textContent = "upload refused: " + e.message;
  }
}

async function addFromInput() {
  const form = new FormData();
  form.append("path", $("#input-select").value);
  try {
    const data = await (await api("/api/books", { method: "POST", body: form })).json();
    data.books.forEach(renderBook);
  } catch (e) {
    $("#add-status").textContent = "not added: " + e.message;
  }
}

// ---- jobs --------------------------------------------------------------------------------------

function jobAction(job, action) {
  const paths = {
    cancel: ["DELETE", ""], pause: ["POST", "/pause"], resume: ["POST", "/resume"], retry: ["POST", "/retry"],
    up: ["POST", "/move"], down: ["POST", "/move"],
  };
  const [method, tail] = paths[action];
  const options = { method };
  if (action === "up" || action === "down") {
    options.headers = { "Content-Type": "application/json" };
    options.body = JSON.stringify({ delta: action === "up" ? -1 : 1 });
  }
  api("/api/jobs/" + job.id + tail, options).then(() => refreshJobs()).catch((e) => alert(e.message));
}

function progressText(job) {
  if (job.state === "done") return "done · " + job.sentences_total + " sentences";
  if (!job.sentences_total) return job.phase || job.state;
  let text = job.sentences_done + "/" + job.sentences_total + " sentences (" + job.percent.toFixed(0) + " %)";
  if (job.state === "running") {
    if (job.realtime) text += " · " + job.realtime.toFixed(1) + "x real time";
    if (job.eta !== null && job.eta !== undefined) text += " · ETA " + hms(job.eta);
    if (job.phase && job.phase !== "synthesising") text += " · " + job.phase;
  }
  return text;
}

function showResult(item, job) {
  const result = $(".job-result", item);
  if (job.state !== "done" || result.dataset.filled) { result.hidden = job.state !== "done"; return; }
  result.dataset.filled = "1";
  result.hidden = false;
  const base = "/api/jobs/" + job.id + "/files/";
  const audioName = job.outputs.find((n) => !/\.(srt|vtt|json)$/.test(n));
  const audio = $(".job-audio", item);
  if (audioName) audio.src = base + encodeURIComponent(audioName); else audio.hidden = true;
  const list = $(".job-chapters", item);
  for (const ch of job.chapters) {
    const li = document.createElement("li");
    const time = document.createElement("span"); time.className = "time"; time.textContent = hms(ch.start);
    const link = document.createElement("a"); link.className = "chapter-link"; link.textContent = ch.title;
    link.dataset.start = ch.start;
    link.addEventListener("click", () => { audio.currentTime = ch.start; audio.play().catch(() => {}); });
    li.append(time, link);
    list.append(li);
  }
  const downloads = $(".job-downloads", item);
  downloads.append("Download: ");
  for (const name of job.outputs) {
    const a = document.createElement("a");
    a.href = base + encodeURIComponent(name); a.download = name.split("/").pop(); a.className = "download-link"; a.textContent = name;
    downloads.append(a, " ");
  }
  showReport(item, job);
}

function showReport(item, job) {  // NAME.report.json's summary, and NAME.report.html when there is one
  const box = $(".job-report", item);
  const report = job.report;
  box.hidden = !report && !job.report_html;
  if (report) {
    $(".job-report-text", box).textContent = report.substituted + " sentence(s) replaced because the voice could not speak them";
    for (const s of report.sentences) {
      const li = document.createElement("li");
      li.textContent = "chapter " + s.chapter + ", sentence " + s.index + ": \u201c" + s.text + "\u201d \u2192 " + s.replacement + " (" + s.reason + ")";
      $(".job-report-list", box).append(li);
    }
  }
  if (job.report_html) {
    const a = document.createElement("a");
    a.href = "/api/jobs/" + job.id + "/report.html"; a.target = "_blank"; a.rel = "noopener"; a.className = "report-link";
    a.textContent = "full report";
    box.append(a);
  }
}

// ---- library -----------------------------------------------------------------------------------

function librarySettings() {
  return {
    path: $("#library-folder").value, language: $("#library-language").value.trim(), engine: $("#library-engine").value,
    speed: Number($("#library-speed").value) || 1, format: $("#library-format").value,
  };
}

function showLibrary(data) {
  const body = $("#library-books tbody");
  body.replaceChildren();
  const count = {};
  for (const b of data.books) {
    count[b.state] = (count[b.state] || 0) + 1;
    const row = body.insertRow();
    row.className = "library-book"; row.dataset.state = b.state;
    row.insertCell().textContent = b.title || b.source;
    row.insertCell().textContent = (b.authors || []).join(", ");
    const st = row.insertCell(); st.className = "library-state"; st.textContent = b.state;
    if (b.reason && b.state !== "converted") st.title = b.reason;
    const where = row.insertCell(); where.className = "muted"; where.textContent = b.state === "unreadable" ? b.reason : b.destination;
  }
  return Object.entries(count).map(([k, n]) => n + " " + k).join(", ") || "no book in this folder";
}

async function libraryRun(queue) {
  const status = $("#library-status");
  status.textContent = "scanning...";
  try {
    const body = librarySettings();
    if (queue) body.watch = $("#library-watch").checked;
    const data = await (await postJSON(queue ? "/api/library" : "/api/library/scan", body)).json();
    status.textContent = showLibrary(data) + (queue && data.watch ? " · watching it" : "");
    if (queue) { data.queued.forEach(renderJob); showWatches(); }
  } catch (e) {
    status.textContent = "library: " + e.message;
  }
}

async function showWatches() {
  const data = await (await api("/api/library/watches")).json();
  const list = $("#library-watches");
  list.replaceChildren();
  for (const w of data.watches) {
    const li = document.createElement("li");
    li.textContent = "watching " + (w.path || "the input folder") + " every " + data.interval + " s" + (w.last_error ? " · " + w.last_error : "") + " ";
    const stop = document.createElement("button");
    stop.type = "button"; stop.textContent = "Stop watching";
    stop.addEventListener("click", () => api("/api/library/watches/" + w.id, { method: "DELETE" }).then(showWatches).catch((e) => alert(e.message)));
    li.append(stop);
    list.append(li);
  }
}

async function startLibrary() {
  const data = await (await api("/api/library/folders")).json();
  for (const f of data.folders) {
    $("#library-folder").add(new Option((f.path || "(the input folder)") + (f.calibre ? " \u00b7 Calibre library" : ""), f.path));
  }
  for (const name of state.engines) $("#library-engine").add(new Option(name, name));
  $("#library-scan").addEventListener("click", () => libraryRun(false));
  $("#library-queue").addEventListener("click", () => libraryRun(true));
  $("#library").hidden = false;
  await showWatches();
}

function renderJob(job) {
  let item = document.querySelector('.job[data-job-id="' + job.id + '"]');
  if (!item) {
    item = $("#job-template").content.firstElementChild.cloneNode(true);
    item.dataset.jobId = job.id;
    for (const action of ["up", "down", "pause", "resume", "retry", "cancel"]) {
      $("." + action, item).addEventListener("click", () => jobAction(state.jobs.get(job.id), action));
    }
    $("#jobs").append(item);
  }
  state.jobs.set(job.id, job);
  item.dataset.state = job.state;
  $(".job-title", item).textContent = job.title;
  $(".job-state", item).textContent = job.state;
  $(".job-bar", item).value = job.percent;
  $(".job-progress", item).textContent = progressText(job);
  $(".job-error", item).textContent = job.error;
  $(".pause", item).hidden = !["queued", "running"].includes(job.state);
  $(".resume", item).hidden = job.state !== "paused";
  $(".retry", item).hidden = !["failed", "cancelled"].includes(job.state);
  $(".cancel", item).hidden = !["queued", "running", "paused"].includes(job.state);
  showResult(item, job);
  $("#no-jobs").hidden = true;
}

function showJobs(jobs) {
  jobs.forEach(renderJob);
  const list = $("#jobs");
  for (const job of jobs) {  // the queue's order
    list.append(document.querySelector('.job[data-job-id="' + job.id + '"]'));
  }
}

async function refreshJobs() {
  const data = await (await api("/api/jobs")).json();
  showJobs(data.jobs);
}

// ---- start -------------------------------------------------------------------------------------

async function start() {
  const health = await (await api("/api/health")).json();
  let info = "version " + health.version + (health.distributed ? " · distributed" : " · this machine");
  $("#server-info").textContent = info;
  if (health.flower_url) {
    const a = document.createElement("a");
    a.href = health.flower_url; a.textContent = "workers (Flower)"; a.target = "_blank"; a.rel = "noopener";
    $("#server-info").append(" · ", a);
  }
  if (health.distributed) {
    const showWorkers = async () => {
      try {
        const w = await (await api("/api/workers")).json();
        $("#workers").textContent = w.workers.length + " worker(s): " + w.workers.join(", ");
      } catch (e) {
        $("#workers").textContent = "workers: " + e.message;
      }
    };
    showWorkers();
    setInterval(showWorkers, 15000);
  }
  const voices = await (await api("/api/voices")).json();
  state.engines = voices.engines;
  state.voices = voices.voices;
  const langs = new Set(voices.voices.map((v) => v.language));
  for (const l of [...langs].sort()) $("#languages").append(new Option(l, l));
  if (health.input_folder) {
    const input = await (await api("/api/input")).json();
    for (const p of input.books) $("#input-select").add(new Option(p, p));
    $("#input-folder").hidden = !input.books.length;
    $("#input-add").addEventListener("click", addFromInput);
    await startLibrary().catch((e) => { $("#library-status").textContent = "library: " + e.message; });
  }
  const books = await (await api("/api/books")).json();
  books.books.forEach(renderBook);
  await refreshJobs();
  const events = new EventSource("/api/events");
  events.onmessage = (ev) => showJobs(JSON.parse(ev.data).jobs);

  const drop = $("#drop");
  $("#file-input").addEventListener("change", (ev) => { upload([...ev.target.files]); ev.target.value = ""; });
  drop.addEventListener("dragover", (ev) => { ev.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (ev) => {
    ev.preventDefault();
    drop.classList.remove("over");
    upload([...ev.dataTransfer.files]);
  });
  document.body.dataset.ready = "1";
}

start().catch((e) => { $("#server-info").textContent = "cannot reach the server: " + e.message; });
