// Texts of the admin console: uploads, ingestion states, metadata editing, publishing.
// keyof en is the set of keys; ru must give every one.

export const en = {
};

export const ru: Record<keyof typeof en, string> = {
};
