// Texts of the admin console: dead letters and re-drive, the CDN (POP health, purge, warm), statistics charts.
// keyof en is the set of keys; ru must give every one.

export const en = {
};

export const ru: Record<keyof typeof en, string> = {
};
