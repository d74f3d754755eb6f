// The page: renders message.js, and accepts its hot updates (no full reload on edit).
import { message } from "./message.js";

function render(m) {
  document.querySelector("#msg").textContent = m;
}
render(message);

if (import.meta.hot) {
  import.meta.hot.accept("./message.js", (mod) => {
    if (mod) render(mod.message);
  });
}
