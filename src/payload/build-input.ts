/**
 * The build reads its input objects through the ELF layer's one converter (src/elf/object-view.ts,
 * the same one `ObjectBuilder.fromElf` uses). This module only keeps the name the build's merge
 * imports; new code should import `objectView` from '../elf/object-view.js'.
 */
export { objectView as inputView, type ObjectView as InputView } from '../elf/object-view.js';
