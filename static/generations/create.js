// lumaweb's create form: library pickers and the reframe box. The form works without this file (a picker is a
// number field, the reframe numbers are typed); no inline code, nothing evaluated, for the Content-Security-Policy.
(function () {
  "use strict";

  function ratioOf(text) {
    const parts = String(text || "").split(":").map(Number);
    return parts.length === 2 && parts[0] > 0 && parts[1] > 0 ? parts[0] / parts[1] : 0;
  }

  // --- pickers: a thumbnail fills in the number field beside it ----------------------------------------------------

  function choose(picker, item) {
    const input = picker.querySelector(".pick-input");
    input.value = item.dataset.pick;
    picker.dataset.ratio = item.dataset.ratio || "";
    const picked = picker.querySelector("[data-picked]");
    picked.replaceChildren(item.querySelector(".thumb").cloneNode(true));
    const browse = picker.querySelector("details.pick-browse");
    if (browse) browse.open = false;
    input.dispatchEvent(new Event("change", { bubbles: true }));
    input.focus();
  }

  document.addEventListener("click", function (event) {
    const item = event.target.closest(".pick-item[data-pick]");
    const picker = item && item.closest("[data-picker]");
    if (picker) {
      event.preventDefault();
      choose(picker, item);
    }
  });

  document.addEventListener("keydown", function (event) {
    // Enter in a picker's search box searches; it must not send the whole create form.
    if (event.key === "Enter" && event.target.matches && event.target.matches(".pick-search")) event.preventDefault();
  });

  document.addEventListener("input", function (event) {
    // A number typed by hand no longer matches the thumbnail shown.
    if (!event.target.matches || !event.target.matches(".pick-input")) return;
    const picker = event.target.closest("[data-picker]");
    picker.querySelector("[data-picked]").replaceChildren();
    picker.dataset.ratio = "";
  });

  // --- the reframe box: where the source sits in the target canvas, in Luma's pixels ------------------------------

  const MAX_STAGE_HEIGHT = 256;

  function Reframe(root) {
    this.root = root;
    this.canvasEl = root.querySelector("[data-canvas-el]");
    this.box = root.querySelector("[data-box]");
    this.sizes = {};
    root.dataset.canvas.split(";").forEach(function (pair) {
      const [ratio, size] = pair.split("=");
      const [w, h] = size.split("x").map(Number);
      this.sizes[ratio] = [w, h];
    }, this);
    this.form = root.closest("form");
    this.inputs = {};
    ["grid_position_x", "grid_position_y", "resized_width", "resized_height"].forEach(function (name) {
      this.inputs[name] = this.form.querySelector("[name=" + name + "]");
    }, this);
    this.bind();
    this.layout();
  }

  Reframe.prototype.canvas = function () {
    const select = this.form.querySelector("[name=aspect_ratio]");
    return this.sizes[select && select.value] || this.sizes["16:9"];
  };

  Reframe.prototype.values = function () {
    const v = {};
    for (const name in this.inputs) v[name] = this.inputs[name].value === "" ? NaN : Number(this.inputs[name].value);
    return v;
  };

  // The source's own shape: the chosen library item's aspect ratio, or the uploaded video's or image's size.
  Reframe.prototype.sourceRatio = function () {
    const what = (this.form.querySelector("[name=what]:checked") || {}).value;
    const upload = (this.form.querySelector("[name=media_from]:checked") || {}).value === "upload";
    if (upload) {
      // The video's size comes back with its upload; the image's is read here from the chosen file (imageSize).
      const el = this.form.querySelector(what === "reframe_video" ? "[name=video_upload]" : "[name=image_source_file]");
      return el && el.dataset.width ? Number(el.dataset.width) / Number(el.dataset.height) : 0;
    }
    const name = what === "reframe_image" ? "image_source" : "video_source";
    const input = this.form.querySelector("[name=" + name + "]");
    const picker = input && input.closest("[data-picker]");
    return picker ? ratioOf(picker.dataset.ratio) : 0;
  };

  // The source fitted inside the canvas, centred (what Luma does when given no numbers).
  Reframe.prototype.fit = function () {
    const [cw, ch] = this.canvas();
    const ratio = this.sourceRatio() || 16 / 9;
    let w = cw, h = Math.round(cw / ratio);
    if (h > ch) { h = ch; w = Math.round(ch * ratio); }
    this.set({ grid_position_x: Math.round((cw - w) / 2), grid_position_y: Math.round((ch - h) / 2),
      resized_width: w, resized_height: h });
  };

  Reframe.prototype.set = function (v) {
    for (const name in v) this.inputs[name].value = String(Math.round(v[name]));
    this.draw();
  };

  Reframe.prototype.layout = function () {
    const [cw, ch] = this.canvas();
    const room = this.canvasEl.parentElement.clientWidth - 16;
    const scale = Math.min(room / cw, MAX_STAGE_HEIGHT / ch);
    if (scale > 0) {
      this.canvasEl.style.width = Math.floor(cw * scale) + "px";
      this.canvasEl.style.height = Math.floor(ch * scale) + "px";
    }
    this.root.querySelector("[data-canvas-size]").textContent = "Canvas " + cw + " × " + ch + " pixels.";
    this.draw();
  };

  Reframe.prototype.draw = function () {
    const [cw, ch] = this.canvas();
    const v = this.values();
    const known = [v.grid_position_x, v.grid_position_y, v.resized_width, v.resized_height].every(isFinite);
    const x = known ? v.grid_position_x : cw * 0.1, y = known ? v.grid_position_y : ch * 0.1;
    const w = known ? v.resized_width : cw * 0.8, h = known ? v.resized_height : ch * 0.8;
    this.box.style.left = (100 * x / cw) + "%";
    this.box.style.top = (100 * y / ch) + "%";
    this.box.style.width = (100 * w / cw) + "%";
    this.box.style.height = (100 * h / ch) + "%";
    this.box.classList.toggle("is-default", !known);
  };

  Reframe.prototype.bind = function () {
    const self = this;
    let drag = null;
    this.box.addEventListener("pointerdown", function (event) {
      event.preventDefault();
      const v = self.values();
      if (![v.grid_position_x, v.grid_position_y, v.resized_width, v.resized_height].every(isFinite)) self.fit();
      const rect = self.canvasEl.getBoundingClientRect();
      const [cw] = self.canvas();
      drag = { resize: event.target.hasAttribute("data-handle"), startX: event.clientX, startY: event.clientY,
        from: self.values(), perPixel: cw / rect.width, ratio: self.sourceRatio() };
      self.box.setPointerCapture(event.pointerId);
    });
    this.box.addEventListener("pointermove", function (event) {
      if (!drag) return;
      const [cw, ch] = self.canvas();
      const dx = (event.clientX - drag.startX) * drag.perPixel, dy = (event.clientY - drag.startY) * drag.perPixel;
      const f = drag.from;
      if (drag.resize) {
        // The corner keeps the source's shape when we know it; the box stays inside the canvas.
        let w = Math.max(16, Math.min(cw - f.grid_position_x, f.resized_width + dx));
        let h = drag.ratio ? w / drag.ratio : Math.max(16, f.resized_height + dy);
        if (f.grid_position_y + h > ch) { h = ch - f.grid_position_y; if (drag.ratio) w = h * drag.ratio; }
        self.set({ resized_width: w, resized_height: h });
      } else {
        self.set({
          grid_position_x: Math.max(0, Math.min(cw - f.resized_width, f.grid_position_x + dx)),
          grid_position_y: Math.max(0, Math.min(ch - f.resized_height, f.grid_position_y + dy)),
        });
      }
    });
    ["pointerup", "pointercancel"].forEach(function (name) {
      self.box.addEventListener(name, function () { drag = null; });
    });
    this.box.addEventListener("keydown", function (event) {
      const step = event.shiftKey ? 64 : 8;
      const moves = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] };
      if (!moves[event.key]) return;
      event.preventDefault();
      const v = self.values();
      if (![v.grid_position_x, v.grid_position_y, v.resized_width, v.resized_height].every(isFinite)) return self.fit();
      const [cw, ch] = self.canvas();
      self.set({
        grid_position_x: Math.max(0, Math.min(cw - v.resized_width, v.grid_position_x + moves[event.key][0])),
        grid_position_y: Math.max(0, Math.min(ch - v.resized_height, v.grid_position_y + moves[event.key][1])),
      });
    });
    for (const name in this.inputs) this.inputs[name].addEventListener("input", function () { self.draw(); });
    this.form.addEventListener("change", function (event) {
      const name = event.target.name;
      if (name === "aspect_ratio") {
        self.layout();
        const v = self.values();
        if ([v.grid_position_x, v.grid_position_y, v.resized_width, v.resized_height].every(isFinite)) self.fit();
      } else if (name === "what") {
        self.layout();
      } else if (name === "video_source" || name === "image_source") {
        self.fit();  // a new source: start from it fitted and centred
      } else if (name === "media_from") {
        const v = self.values();  // library or upload: another source, another shape
        if ([v.grid_position_x, v.grid_position_y, v.resized_width, v.resized_height].every(isFinite)) self.fit();
      }
    });
  };

  window.addEventListener("resize", function () {
    document.querySelectorAll("[data-reframe]").forEach(function (el) { if (el.reframe) el.reframe.layout(); });
  });

  function start(root) {
    (root.querySelectorAll ? root : document).querySelectorAll("[data-reframe]").forEach(function (el) {
      if (!el.reframe && el.closest("form")) el.reframe = new Reframe(el);
    });
  }

  // A new create panel (htmx swap) brings a new box; an uploaded video brings its size.
  document.addEventListener("htmx:load", function (event) {
    start(event.target);
    if (event.target.id === "video-upload") {
      const form = event.target.closest("form");
      const box = form && form.querySelector("[data-reframe]");
      const token = event.target.querySelector("[name=video_upload]");
      if (box && box.reframe && token) box.reframe.fit();
    }
  });
  document.addEventListener("DOMContentLoaded", function () { start(document); });

  // An image chosen to reframe: its size as shown (turned upright, as the server measures it) places the box. The
  // server refuses a box of another shape, which Luma would stretch the image into.
  document.addEventListener("change", function (event) {
    const input = event.target;
    if (input.name !== "image_source_file") return;
    delete input.dataset.width;
    delete input.dataset.height;
    const file = input.files && input.files[0];
    const box = input.form && input.form.querySelector("[data-reframe]");
    if (!file || !box || !box.reframe || !window.createImageBitmap) return;
    createImageBitmap(file).then(function (bitmap) {
      if (input.files[0] !== file) return bitmap.close();  // another file was chosen meanwhile
      input.dataset.width = String(bitmap.width);
      input.dataset.height = String(bitmap.height);
      bitmap.close();
      box.reframe.fit();
    }, function () { /* not an image we can read: the server says so when the form is sent */ });
  });

  // --- models: each takes its own resolutions, durations and aspect ratios (the server refuses the rest) -----------

  const IMAGE_MODES = ["image", "reframe_image", "image_edit", "layering"];
  const PREFERRED = { resolution: "720p", duration: "5s", aspect_ratio: "16:9" };

  function allowedFor(form) {
    const data = form.querySelector("#create-allowed");
    return data ? JSON.parse(data.textContent) : {};
  }

  function currentModel(form) {
    const what = (form.querySelector("[name=what]:checked") || {}).value;
    const select = form.querySelector(IMAGE_MODES.includes(what) ? "[name=image_model]" : "[name=model]");
    return select ? select.value : "";
  }

  function hasOption(select, value) {
    return Array.prototype.some.call(select.options, function (option) { return option.value === value; });
  }

  // Edit image and Layers are Uni-1's, reframing an image is Photon's: switching mode brings a model that does it.
  function modelForMode(form) {
    const what = (form.querySelector("[name=what]:checked") || {}).value;
    const select = form.querySelector("[name=image_model]");
    if (!select) return;
    let want = "";
    if ((what === "image_edit" && !select.value.startsWith("uni-")) || (what === "layering" && select.value !== "uni-1")) {
      want = "uni-1";
    } else if (what === "reframe_image" && select.value.startsWith("uni-")) {
      want = "photon-1";
    }
    if (!want || !hasOption(select, want)) return false;
    select.value = want;
    return true;
  }

  function fitOptions(form) {
    const allowed = allowedFor(form)[currentModel(form)];
    if (!allowed) return;
    let changed = false;
    for (const name in allowed) {
      const select = form.querySelector("select[name=" + name + "]");
      if (!select) continue;
      Array.prototype.forEach.call(select.options, function (option) {
        option.hidden = !allowed[name].includes(option.value);
      });
      if (!allowed[name].includes(select.value)) {
        select.value = allowed[name].includes(PREFERRED[name]) ? PREFERRED[name] : allowed[name][0];
        changed = true;
      }
    }
    return changed;
  }

  function fitForm(form) {
    if (!form || form.id !== "create-form") return;
    const switched = modelForMode(form);
    // Ray 3.2 reframes in SDR only: HDR ticked for a video does not follow into a reframe.
    if ((form.querySelector("[name=what]:checked") || {}).value === "reframe_video") {
      form.querySelectorAll("[name=hdr], [name=exr_export]").forEach(function (box) { box.checked = false; });
    }
    // The price follows what was adjusted here too.
    if (fitOptions(form) || switched) form.dispatchEvent(new Event("change", { bubbles: true }));
  }

  document.addEventListener("change", function (event) {
    if (["what", "model", "image_model"].includes(event.target.name)) fitForm(event.target.closest("form"));
  });

  // EXR comes with HDR only: ticking EXR ticks HDR, unticking HDR unticks EXR.
  document.addEventListener("input", function (event) {
    const box = event.target, form = box.form;
    if (!form || form.id !== "create-form" || !["hdr", "exr_export"].includes(box.name)) return;
    const hdr = form.querySelector("[name=hdr]"), exr = form.querySelector("[name=exr_export]");
    if (box === exr && exr.checked) hdr.checked = true;
    if (box === hdr && !hdr.checked) exr.checked = false;
  });
  document.addEventListener("DOMContentLoaded", function () { fitForm(document.getElementById("create-form")); });
  document.addEventListener("htmx:load", function (event) {
    if (event.target.querySelector) fitForm(event.target.id === "create-panel" ? event.target.querySelector("#create-form") : null);
  });

  // Uni-1's price grows with each reference: count the chosen files for the estimate (before the form's change).
  document.addEventListener("input", function (event) {
    const input = event.target;
    if (!input.matches || !input.matches("input[type=file][name^=uni_ref_]")) return;
    const form = input.closest("form");
    const files = form.querySelectorAll("input[type=file][name^=uni_ref_]");
    const count = Array.prototype.filter.call(files, function (f) { return f.files && f.files.length; }).length;
    form.querySelector("[name=uni_ref_files]").value = String(count);
  });
  // --- the files' total: more than one request may carry is said here, before anything is sent ------------------

  function megabytes(size) {
    const mb = size / 1048576;
    return (size % 1048576 ? mb.toFixed(1) : String(mb)) + " MB";
  }

  function labelOf(input) {
    const label = input.id && document.querySelector("label[for=" + input.id + "]");
    return label ? label.textContent.trim().split(", or ")[0] : input.name;  // "Reference 3, or upload it"
  }

  document.addEventListener("htmx:beforeRequest", function (event) {
    const form = event.detail.elt;
    if (!form || form.id !== "create-form") return;
    const panel = form.closest("#create-panel") || form.parentElement;
    panel.querySelectorAll("[data-too-large]").forEach(function (el) { el.remove(); });
    const inputs = Array.prototype.filter.call(form.querySelectorAll("input[type=file][data-request-max]"),
      function (input) { return input.files && input.files.length; });
    if (!inputs.length) return;
    const limit = Number(inputs[0].dataset.requestMax);
    const chosen = inputs.map(function (input) { return { input: input, size: input.files[0].size }; });
    const total = chosen.reduce(function (sum, file) { return sum + file.size; }, 0);
    if (!limit || total + 64 * 1024 <= limit) return;  // room for the form's own fields
    event.preventDefault();  // nothing is sent; what was typed and chosen stays
    chosen.sort(function (a, b) { return b.size - a.size; });
    const list = chosen.map(function (file) {
      return file.input.files[0].name + " (" + megabytes(file.size) + ", " + labelOf(file.input) + ")";
    });
    const message = document.createElement("p");
    message.className = "error";
    message.setAttribute("role", "alert");
    message.dataset.tooLarge = "";
    message.textContent = "The files chosen add up to " + megabytes(total) + ", more than the " + megabytes(limit) +
      " one request may carry: " + list.join(", ") + ". Nothing was sent: remove some of them or choose smaller " +
      "images, then press Generate again.";
    form.before(message);
    message.scrollIntoView({ block: "nearest" });
  });

  // Switching mode shows the box for the first time: lay it out once it has a width.
  document.addEventListener("change", function (event) {
    if (event.target.name !== "what") return;
    document.querySelectorAll("[data-reframe]").forEach(function (el) { if (el.reframe) el.reframe.layout(); });
  });
})();
