// Optional enhancement: show each UTC time also in the reader's own zone. The pages work without it.
document.querySelectorAll("time[datetime]").forEach((element) => {
  const when = new Date(element.getAttribute("datetime"));
  if (!Number.isNaN(when.getTime())) {
    element.title = `${when.toLocaleString()} (your time)`;
  }
});
