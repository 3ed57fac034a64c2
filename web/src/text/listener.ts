// Texts of the listener app pages added after the first journey: home feed, recommendations, similar items, account locale.
// keyof en is the set of keys; ru must give every one.

export const en = {
};

export const ru: Record<keyof typeof en, string> = {
};
