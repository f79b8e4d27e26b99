// Optional enhancement: show each UTC time also in the reader's own zone. The pages work without it.
document.querySelectorAll("time[datetime]").forEach((element) => {
  const when = new Date(element.getAttribute("datetime"));
  if (!Number.isNaN(when.getTime())) {
    element.title = `${when.toLocaleString()} (your time)`;
  }
});

// Warn before an unused page session ends (REINTEGRA_SESSION_IDLE_MINUTES), and say when it has: a
// reviewer reading a long explanation would otherwise find out only on the next click.
const sessionWarning = document.getElementById("session-warning");
if (sessionWarning) {
  const seconds = Number(sessionWarning.dataset.seconds);
  const lead = Math.min(120, seconds / 2);
  const ends = new Date(Date.now() + seconds * 1000);
  const say = (text, linkText) => {
    const stay = document.createElement("a");
    stay.href = window.location.href;
    stay.textContent = linkText;
    sessionWarning.replaceChildren(`${text} `, stay);
    sessionWarning.hidden = false;
  };
  setTimeout(() => {
    const at = ends.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
    say(`Your session ends at ${at} unless you open or reload a page.`, "Stay signed in");
  }, (seconds - lead) * 1000);
  setTimeout(() => say("Your session has ended.", "Sign in again"), seconds * 1000);
}
